//! No input makes `parse` panic: it returns a scenario or diagnostics, whatever it is fed.

use proptest::prelude::*;

const QUICKSTART: &str = include_str!("../../scenarios/quickstart.yaml");

/// Characters that matter to YAML and to our schema, so mutations hit interesting cases.
const ALPHABET: &[char] = &[
    ' ', '\n', '\t', ':', '-', '{', '}', '[', ']', ',', '#', '&', '*', '!', '|', '>', '\'', '"',
    '%', '@', '?', '.', '/', '0', '1', '9', 'e', 'x', 'é', '\u{0}', '\u{feff}',
];

/// One edit of the text, at a position given as a fraction of its length.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: f64, len: usize },
    Insert { at: f64, text: String },
    Duplicate { at: f64, len: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    let text = prop::collection::vec(prop::sample::select(ALPHABET), 1..6)
        .prop_map(|chars| chars.into_iter().collect::<String>());
    prop_oneof![
        (0.0..1.0f64, 1..40usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        (0.0..1.0f64, text).prop_map(|(at, text)| Edit::Insert { at, text }),
        (0.0..1.0f64, 1..200usize).prop_map(|(at, len)| Edit::Duplicate { at, len }),
    ]
}

/// The character boundary nearest to `at` (a fraction of the length) in `text`.
fn boundary(text: &str, at: f64) -> usize {
    let mut index = ((text.len() as f64) * at) as usize;
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index.min(text.len())
}

fn apply(text: &mut String, edit: &Edit) {
    match edit {
        Edit::Delete { at, len } => {
            let start = boundary(text, *at);
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.replace_range(start..end, "");
        }
        Edit::Insert { at, text: inserted } => {
            let index = boundary(text, *at);
            text.insert_str(index, inserted);
        }
        Edit::Duplicate { at, len } => {
            let start = boundary(text, *at);
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let copy = text[start..end].to_owned();
            text.insert_str(end, &copy);
        }
    }
}

/// What every outcome must satisfy besides not panicking.
fn check_outcome(source: &str) {
    match tracelab_scenario::parse(source, "fuzz.yaml") {
        Ok(scenario) => {
            // Whatever parses must also pass the programmatic checks.
            assert_eq!(scenario.validate(), Ok(()));
        }
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty());
            for diagnostic in &diagnostics {
                assert!(diagnostic.line >= 1, "{diagnostic}");
                assert!(diagnostic.column >= 1, "{diagnostic}");
                assert!(!diagnostic.message.is_empty());
            }
        }
    }
}

proptest! {
    // PROPTEST_CASES raises the count for long runs (bench/fuzz.sh); CI runs the default.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn random_text_never_panics(source in "\\PC{0,300}") {
        check_outcome(&source);
    }

    #[test]
    fn random_yaml_tokens_never_panic(tokens in prop::collection::vec(
        prop::sample::select(&[
            "services:", "load:", "routes:", "steps:", "- ", "call: ", "parallel:", "work: ",
            "latency: ", "{constant: 1}", "rate: ", "duration: ", "1s", "entries:", "/a", "api",
            "\n", "  ", "[", "]", "{", "}", ",", "&a ", "*a", "<<: ", "!!str ", ".nan", "-1",
            "99999999999999999999999", "1e400", "~", "? ",
        ][..]),
        0..80,
    )) {
        check_outcome(&tokens.concat());
    }

    #[test]
    fn mutated_quickstart_never_panics(edits in prop::collection::vec(edit(), 1..6)) {
        let mut source = QUICKSTART.to_owned();
        for edit in &edits {
            apply(&mut source, edit);
        }
        check_outcome(&source);
    }
}
