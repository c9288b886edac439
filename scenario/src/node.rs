//! A YAML document as a tree of nodes that remember where they are in the file.
//!
//! serde-saphyr deserializes straight into typed structs and stops at the first mismatch. To
//! report every unknown field and every bad value at once, the file is first read into this
//! untyped tree (serde-saphyr's `Spanned` supplies the positions), and [`crate::decode`] then
//! reads the model from the tree through the model's serde derives, as often as it takes.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A place in the file: 1-based line and character column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// One YAML node and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) pos: Pos,
}

/// The content of a node. Plain scalars arrive already typed by YAML's core schema, so
/// `42` is an integer and `"42"` a string. The children are nodes; while a format hands the
/// tree over they are of its own type `C` (located or captured), see [`Value::into_node`].
#[derive(Debug, Clone)]
pub(crate) enum Value<C = Node> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<C>),
    Map(Vec<(C, C)>),
}

impl Value {
    /// What the value is, for messages such as "expected a number, found a string".
    pub(crate) fn describe(&self) -> String {
        match self {
            Value::Null => "nothing".to_owned(),
            Value::Bool(value) => format!("the boolean `{value}`"),
            Value::Int(value) => format!("the integer `{value}`"),
            Value::Float(value) => format!("the number `{value}`"),
            Value::Str(value) => format!("the string `{value}`"),
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
        }
    }
}

impl Node {
    /// The text of a scalar used as a mapping key; `None` for a list or mapping key.
    pub(crate) fn key_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(text) => Some(text.clone()),
            Value::Int(value) => Some(value.to_string()),
            Value::Float(value) => Some(value.to_string()),
            Value::Bool(value) => Some(value.to_string()),
            Value::Null => Some("null".to_owned()),
            Value::Seq(_) | Value::Map(_) => None,
        }
    }
}

/// Why the document could not be read as YAML at all.
pub(crate) struct SyntaxError {
    pub(crate) pos: Pos,
    pub(crate) message: String,
}

/// Reads `source` into a located tree.
pub(crate) fn read(source: &str) -> Result<Node, SyntaxError> {
    if source.trim().is_empty() || only_comments(source) {
        return Err(SyntaxError {
            pos: Pos { line: 1, column: 1 },
            message: "the file is empty; a scenario needs at least `services` and `load`"
                .to_owned(),
        });
    }
    // Non-finite floats pass through so that `.nan` is reported by validation next to every
    // other bad value, with its field path, instead of ending the read here.
    let options = serde_saphyr::options! {
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::PassThrough,
    };
    match serde_saphyr::from_str_with_options::<Located>(source, options) {
        Ok(located) => Ok(located.into_node()),
        Err(error) => {
            let pos = error
                .location()
                .map(|location| Pos {
                    line: to_usize(location.line()),
                    column: to_usize(location.column()),
                })
                .unwrap_or(Pos { line: 1, column: 1 });
            Err(SyntaxError {
                pos,
                message: plain_message(&error),
            })
        }
    }
}

fn only_comments(source: &str) -> bool {
    source
        .lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// serde-saphyr's message without its own snippet and without the trailing "at line X,
/// column Y", which our diagnostic already shows in front.
fn plain_message(error: &serde_saphyr::Error) -> String {
    let message = error.without_snippet().to_string();
    let message = match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message,
    };
    let message = match message.strip_prefix("error: ") {
        Some(rest) => rest.to_owned(),
        None => message,
    };
    let message = match message.split_once(": ") {
        // Drop a leading "line L column C: " if the library put one in front.
        Some((head, rest)) if head.starts_with("line ") && head.contains("column") => {
            rest.to_owned()
        }
        _ => message,
    };
    in_our_words(message)
}

/// The library's messages that speak of its own internals, said for a scenario's writer.
fn in_our_words(message: String) -> String {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(", set ").next().unwrap_or(rest).trim();
        return format!("`{key}` appears twice in this mapping; each key may appear once");
    }
    if message.starts_with("budget breached") {
        let what = if message.contains("Depth") {
            "nests too deeply (more than 64 levels)"
        } else {
            "is too large for a scenario (too many nodes, aliases or bytes)"
        };
        return format!("the document {what}; a scenario is a few levels of mappings and lists");
    }
    message
}

/// A value read with its position (from serde-saphyr).
struct Located(Spanned<Value<Located>>);

impl<'de> Deserialize<'de> for Located {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Spanned::deserialize(deserializer).map(Located)
    }
}

impl Located {
    fn into_node(self) -> Node {
        let pos = Pos {
            line: to_usize(self.0.referenced.line()),
            column: to_usize(self.0.referenced.column()),
        };
        self.0.value.into_node(pos, Located::into_node)
    }
}

/// A value of any self-describing format captured as a tree, without positions (a format
/// other than the scenario reader's own, such as a YAML document read straight into the model).
pub(crate) struct Captured(pub(crate) Node);

impl<'de> Deserialize<'de> for Captured {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Value::<Captured>::deserialize(deserializer)?;
        Ok(Captured(raw.into_node(Pos::default(), |child| child.0)))
    }
}

impl<C> Value<C> {
    /// The node at `pos` with this content, its children made nodes by `child`.
    fn into_node(self, pos: Pos, child: fn(C) -> Node) -> Node {
        let value = match self {
            Value::Null => Value::Null,
            Value::Bool(value) => Value::Bool(value),
            Value::Int(value) => Value::Int(value),
            Value::Float(value) => Value::Float(value),
            Value::Str(value) => Value::Str(value),
            Value::Seq(items) => Value::Seq(items.into_iter().map(child).collect()),
            Value::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| (child(key), child(value)))
                    .collect(),
            ),
        };
        Node { value, pos }
    }
}

impl<'de, C: Deserialize<'de>> Deserialize<'de> for Value<C> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor(PhantomData))
    }
}

struct RawVisitor<C>(PhantomData<C>);

impl<'de, C: Deserialize<'de>> Visitor<'de> for RawVisitor<C> {
    type Value = Value<C>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value<C>, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value<C>, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value<C>, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value<C>, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value<C>, E> {
        Ok(Value::Int(i128::from(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value<C>, E> {
        Ok(Value::Int(i128::from(value)))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Value<C>, E> {
        Ok(Value::Int(value))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Value<C>, E> {
        match i128::try_from(value) {
            Ok(value) => Ok(Value::Int(value)),
            // Too large for any field we have; keep it as a number so the range check reports it.
            Err(_) => Ok(Value::Float(value as f64)),
        }
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value<C>, E> {
        Ok(Value::Float(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value<C>, E> {
        Ok(Value::Str(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value<C>, E> {
        Ok(Value::Str(value))
    }

    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<Value<C>, E> {
        Ok(Value::Str(String::from_utf8_lossy(value).into_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<C>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<C>, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}
