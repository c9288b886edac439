//! The scenario as a commented YAML file.
//!
//! The model is serialized through its own serde derives (to a tree of values in field order,
//! `emit/tree.rs`, then written as YAML), so the file holds exactly what the model says and
//! reads back as the same scenario;
//! only the layout and the comments are chosen here. Small mappings and lists go on one line
//! in flow style (`{call: payment, route: /charge}`), as the library's scenarios write them;
//! a long list of short items wraps over several lines. Each comment goes above the value it
//! explains; a comment about a value that is not written (a default, an empty list) goes above
//! the nearest written value that contains it.

mod tree;

use std::fmt::Write as _;

use tracelab_scenario::Scenario;

use crate::notes::Notes;
use tree::Tree;

/// Lines are kept to this width where the content allows.
const WIDTH: usize = 100;

/// The scenario as YAML, `header` as its opening comment.
pub(crate) fn yaml(scenario: &Scenario, notes: &Notes, header: &[String]) -> String {
    let value = match tree::to_tree(scenario) {
        Ok(value) => value,
        // The model serializes every value it can hold; a failure would be a bug.
        Err(error) => return format!("# the scenario could not be written: {error}\n"),
    };
    let mut paths = Vec::new();
    collect_paths(&value, "", &mut paths);
    let notes = placed(notes, &paths);
    let mut out = String::new();
    for line in header {
        comment(&mut out, 0, line);
    }
    if !header.is_empty() {
        out.push('\n');
    }
    if let Tree::Map(map) = &value {
        for (key, child) in map {
            if matches!(key.as_str(), "services" | "load") && !out.ends_with("\n\n") {
                out.push('\n');
            }
            entry(&mut out, 0, key, child, key, &notes);
        }
    }
    out
}

/// Comments re-keyed to the paths that are written.
fn placed(notes: &Notes, paths: &[String]) -> Notes {
    let mut placed = Notes::default();
    for (path, lines) in &notes.0 {
        let target = paths
            .iter()
            .filter(|p| {
                path == *p
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
            .max_by_key(|p| p.len())
            .cloned()
            .unwrap_or_default();
        for line in lines {
            placed.add(&target, line.clone());
        }
    }
    placed
}

fn collect_paths(value: &Tree, path: &str, paths: &mut Vec<String>) {
    paths.push(path.to_owned());
    match value {
        Tree::Map(map) => {
            for (key, child) in map {
                collect_paths(child, &join(path, key), paths);
            }
        }
        Tree::Seq(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_paths(child, &format!("{path}[{i}]"), paths);
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    match path.is_empty() {
        true => key.to_owned(),
        false => format!("{path}.{key}"),
    }
}

/// Writes `# line`, wrapped at the width.
fn comment(out: &mut String, indent: usize, line: &str) {
    if line.is_empty() {
        out.push_str(&" ".repeat(indent));
        out.push_str("#\n");
        return;
    }
    if indent + 2 + line.len() <= WIDTH {
        let _ = writeln!(out, "{}# {line}", " ".repeat(indent));
        return;
    }
    let mut current = String::new();
    for word in line.split(' ') {
        if !current.is_empty() && indent + 2 + current.len() + 1 + word.len() > WIDTH {
            let _ = writeln!(out, "{}# {current}", " ".repeat(indent));
            current.clear();
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    let _ = writeln!(out, "{}# {current}", " ".repeat(indent));
}

/// Whether any comment sits inside `path` (at it or below it).
fn commented_inside(notes: &Notes, path: &str) -> bool {
    notes.0.keys().any(|p| {
        p.strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}

/// `key: value` at `indent`, with the comments of `path` above it.
fn entry(out: &mut String, indent: usize, key: &str, value: &Tree, path: &str, notes: &Notes) {
    for line in notes.at(path) {
        comment(out, indent, line);
    }
    let pad = " ".repeat(indent);
    let key = scalar_text(key);
    match value {
        Tree::Map(map) if !map.is_empty() => {
            let flow = flow(value);
            if !commented_inside(notes, path) && indent + key.len() + 2 + flow.len() <= WIDTH {
                let _ = writeln!(out, "{pad}{key}: {flow}");
                return;
            }
            let _ = writeln!(out, "{pad}{key}:");
            for (child_key, child) in map {
                entry(
                    out,
                    indent + 2,
                    child_key,
                    child,
                    &join(path, child_key),
                    notes,
                );
            }
        }
        Tree::Seq(items) if !items.is_empty() => {
            let flow = flow(value);
            if !commented_inside(notes, path) && indent + key.len() + 2 + flow.len() <= WIDTH {
                let _ = writeln!(out, "{pad}{key}: {flow}");
                return;
            }
            let short_items = items.iter().all(|i| flow_item(i).len() <= WIDTH / 2);
            if !commented_inside(notes, path) && short_items {
                wrapped(out, indent, &format!("{key}: "), items);
                return;
            }
            let _ = writeln!(out, "{pad}{key}:");
            for (i, item) in items.iter().enumerate() {
                list_item(out, indent + 2, item, &format!("{path}[{i}]"), notes);
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{key}: {}", flow(other));
        }
    }
}

/// One `- item` of a block list.
fn list_item(out: &mut String, indent: usize, item: &Tree, path: &str, notes: &Notes) {
    for line in notes.at(path) {
        comment(out, indent, line);
    }
    let pad = " ".repeat(indent);
    let flow = flow(item);
    match item {
        Tree::Map(map) if !map.is_empty() => {
            if !commented_inside(notes, path) && indent + 2 + flow.len() <= WIDTH {
                let _ = writeln!(out, "{pad}- {flow}");
                return;
            }
            // `- ` then the mapping, its keys aligned after the dash; the first key's comments
            // go above the dash.
            let mut first = true;
            for (key, child) in map {
                let child_path = join(path, key);
                if first {
                    for line in notes.at(&child_path) {
                        comment(out, indent, line);
                    }
                    let mut line = String::new();
                    entry(
                        &mut line,
                        indent + 2,
                        key,
                        child,
                        &child_path,
                        &without(notes, &child_path),
                    );
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&line[indent + 2..]);
                    first = false;
                } else {
                    entry(out, indent + 2, key, child, &child_path, notes);
                }
            }
        }
        _ => {
            let _ = writeln!(out, "{pad}- {flow}");
        }
    }
}

/// The notes without those at `path` itself (already written).
fn without(notes: &Notes, path: &str) -> Notes {
    let mut rest = notes.clone();
    rest.0.shift_remove(path);
    rest
}

/// A list written in flow style over as many lines as it takes.
fn wrapped(out: &mut String, indent: usize, lead: &str, items: &[Tree]) {
    let continuation = " ".repeat(indent + 4);
    let mut line = format!("{}{lead}[", " ".repeat(indent));
    let last = items.len() - 1;
    for (i, item) in items.iter().enumerate() {
        let text = format!("{}{}", flow_item(item), if i == last { "]" } else { "," });
        let fresh = line.ends_with('[') || line.trim().is_empty();
        if !fresh && line.len() + 1 + text.len() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = continuation.clone();
        } else if !fresh {
            line.push(' ');
        }
        line.push_str(&text);
    }
    out.push_str(&line);
    out.push('\n');
}

fn flow_item(value: &Tree) -> String {
    flow(value)
}

/// A value in flow style, on one line.
fn flow(value: &Tree) -> String {
    match value {
        Tree::Null => "null".to_owned(),
        Tree::Bool(b) => b.to_string(),
        Tree::Int(i) => i.to_string(),
        Tree::UInt(u) => u.to_string(),
        Tree::Float(f) => number(*f),
        Tree::Str(s) => scalar_text(s),
        Tree::Seq(items) => {
            let items: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        Tree::Map(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", scalar_text(k), flow(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// A number as YAML reads it back: whole numbers without a fraction, others in the shortest
/// form that reads back exactly.
fn number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else if value.is_finite() {
        format!("{value}")
    } else if value.is_nan() {
        ".nan".to_owned()
    } else if value > 0.0 {
        ".inf".to_owned()
    } else {
        "-.inf".to_owned()
    }
}

/// A string as a YAML scalar: plain when it cannot be read as anything else (a number, a
/// boolean, null, a flow collection or a comment), else double-quoted.
fn scalar_text(text: &str) -> String {
    let plain = !text.is_empty()
        && text.trim() == text
        && text.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        && !text
            .starts_with(|c: char| c.is_ascii_digit() || "-?:,[]{}#&*!|>'\"%@`.+~=".contains(c))
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.ends_with(':')
        && !text.contains([',', '[', ']', '{', '}'])
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        text.to_owned()
    } else {
        serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_only_when_they_must_be() {
        for plain in [
            "payment",
            "/checkout",
            "/",
            "GET",
            "db.query",
            "cache.get products",
            "10s",
        ] {
            let expected = match plain {
                "10s" => "\"10s\"",
                other => other,
            };
            assert_eq!(scalar_text(plain), expected);
        }
        for quoted in [
            "true", "1.0.0", "a: b", "x, y", "", " lead", "#tag", "-1", "{x}",
        ] {
            assert!(scalar_text(quoted).starts_with('"'), "{quoted}");
        }
    }

    #[test]
    fn long_lists_wrap_in_flow_style() {
        let items: Vec<Tree> = (0..30)
            .map(|i| Tree::Seq(vec![Tree::Int(i), Tree::Int(i * 10)]))
            .collect();
        let mut out = String::new();
        wrapped(&mut out, 4, "quantiles: ", &items);
        assert!(out.lines().count() > 1);
        assert!(out.lines().all(|l| l.len() <= WIDTH), "{out}");
        assert!(out.starts_with("    quantiles: [[0, 0], [1, 10],"));
        assert!(
            out.lines().skip(1).all(|l| l.starts_with("        [")),
            "{out}"
        );
    }
}
