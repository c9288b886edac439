fn main() {
    for path in std::env::args().skip(1) {
        let source = std::fs::read_to_string(&path).unwrap();
        match tracelab_scenario::parse(&source, &path) {
            Ok(_) => println!("{path}: ok"),
            Err(d) => println!("{d}"),
        }
    }
}
