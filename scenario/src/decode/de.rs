//! A `serde::Deserializer` over the located YAML tree.
//!
//! Every value of the model goes through the model's own serde derives; this deserializer
//! only adds what serde cannot know: where each node is, the field path to it, and wording
//! for what was expected there. It reads like any self-describing format (the node's own type
//! picks the visitor method, so a type may accept several forms, as durations and latency
//! shorthands do), with three additions:
//!
//! - a struct's unknown keys are reported and skipped, all of them, with "did you mean";
//! - nodes the caller marks absent (broken earlier) are skipped: a field left out, a list item
//!   or map entry left out;
//! - the key-tagged form of an enum (a step: a mapping whose one kind key is itself a field
//!   of the variant) is read from the struct name [`KEY_TAGGED`] marks.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::error::{
    DeError, Hint, Located, Problem, one_of, unknown_name_help, what, with_article, words,
};
use super::{Issue, KEY_TAGGED, index, join};
use crate::node::{Node, Pos, Value};

/// What one decoding pass shares between its deserializers.
pub(crate) struct Context<'n> {
    /// File paths of nodes to treat as absent.
    pub(crate) absent: &'n HashSet<String>,
    /// Stand-ins for required fields whose value is absent: (struct, field) → node.
    pub(crate) placeholders: &'n HashMap<(&'static str, &'static str), Node>,
    /// Problems that do not stop the pass (unknown fields, keys that are not names).
    pub(crate) issues: RefCell<Vec<Issue>>,
    /// Where each file path is; the first place recorded wins.
    pub(crate) positions: &'n RefCell<HashMap<String, Pos>>,
    /// Decoded list index → file list index, for items after one left out.
    pub(crate) moved: RefCell<HashMap<String, String>>,
}

impl Context<'_> {
    fn issue(&self, pos: Pos, path: String, message: String, help: Option<String>) {
        self.issues.borrow_mut().push(Issue {
            pos,
            path,
            message,
            help,
        });
    }

    fn locate(&self, path: &str, pos: Pos) {
        self.positions
            .borrow_mut()
            .entry(path.to_owned())
            .or_insert(pos);
    }
}

/// Deserializes one node at a file path.
pub(crate) struct NodeDe<'n> {
    node: &'n Node,
    path: String,
    cx: &'n Context<'n>,
    /// How a struct read from this node is named, when its type name says too little (the
    /// parameters of a latency model variant).
    what: Option<String>,
}

impl<'n> NodeDe<'n> {
    pub(crate) fn new(node: &'n Node, path: String, cx: &'n Context<'n>) -> Self {
        cx.locate(&path, node.pos);
        NodeDe {
            node,
            path,
            cx,
            what: None,
        }
    }

    /// Places a problem raised while this node was read.
    fn finish<T>(&self, result: Result<T, DeError>, hint: &Hint) -> Result<T, DeError> {
        result.map_err(|error| match error {
            DeError::Pending(problem) => DeError::Located(self.locate(problem, hint)),
            located => located,
        })
    }

    fn locate(&self, problem: Problem, hint: &Hint) -> Located {
        let what = self.what.as_deref().unwrap_or(hint.what());
        let at = |path: String, message: String, help: Option<String>| Located {
            path,
            pos: self.node.pos,
            message,
            help,
            silent: false,
        };
        match problem {
            Problem::Custom { message, help } => at(self.path.clone(), message, help),
            Problem::Mismatch { expected } => {
                let scalar = matches!(
                    self.node.value,
                    Value::Int(_) | Value::Float(_) | Value::Bool(_)
                );
                let message = format!(
                    "expected {}, found {}",
                    hint.expected(&expected),
                    self.node.value.describe()
                );
                at(self.path.clone(), message, hint.help(scalar))
            }
            Problem::UnknownVariant { variant, expected } => at(
                self.path.clone(),
                format!("unknown {} `{variant}`", hint.noun()),
                Some(unknown_name_help(&variant, expected)),
            ),
            Problem::UnknownField { field, expected } => at(
                join(&self.path, &field),
                format!("unknown field `{field}` in {what}"),
                Some(unknown_name_help(&field, expected)),
            ),
            Problem::MissingField(field) => {
                let path = join(&self.path, field);
                if self.cx.absent.contains(&path) {
                    // Its value was broken and is reported already; this node is broken too.
                    let mut located = at(self.path.clone(), String::new(), None);
                    located.silent = true;
                    located
                } else {
                    let message = format!("missing field `{field}` in {what}");
                    at(path, message, None)
                }
            }
            Problem::DuplicateField(field) => at(
                join(&self.path, field),
                format!("field `{field}` is given twice"),
                None,
            ),
        }
    }

    /// Hands the node to the visitor as what it is.
    fn offer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(value) => visitor.visit_bool(*value),
            Value::Int(value) => {
                if let Ok(value) = u64::try_from(*value) {
                    visitor.visit_u64(value)
                } else if let Ok(value) = i64::try_from(*value) {
                    visitor.visit_i64(value)
                } else {
                    visitor.visit_i128(*value)
                }
            }
            Value::Float(value) => visitor.visit_f64(*value),
            Value::Str(text) => visitor.visit_str(text),
            Value::Seq(items) => visitor.visit_seq(Items {
                items,
                path: self.path,
                cx: self.cx,
                position: 0,
                kept: 0,
            }),
            Value::Map(entries) => {
                visitor.visit_map(Entries::new(entries, &self.path, self.cx, false))
            }
        }
    }

    fn hinted<'de, V: Visitor<'de>>(self, visitor: V, hint: Hint) -> Result<V::Value, DeError> {
        let placed = NodeDe {
            node: self.node,
            path: self.path.clone(),
            cx: self.cx,
            what: self.what.clone(),
        };
        let result = self.offer(visitor);
        placed.finish(result, &hint)
    }

    fn key_tagged<'de, V: Visitor<'de>>(
        self,
        type_name: &str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let noun = words(type_name);
        let Value::Map(entries) = &self.node.value else {
            let hint = Hint::Struct {
                what: with_article(&noun),
            };
            let help = format!("write a mapping with one of {}", one_of(variants));
            let located = self.locate(
                Problem::Mismatch {
                    expected: String::new(),
                },
                &hint,
            );
            return Err(DeError::Located(Located {
                help: Some(help),
                ..located
            }));
        };
        let keys: Vec<String> = entries
            .iter()
            .filter_map(|(key, _)| key.key_text())
            .collect();
        let kinds: Vec<&'static str> = variants
            .iter()
            .copied()
            .filter(|kind| keys.iter().any(|key| key == kind))
            .collect();
        let rule = format!(
            "{} must have exactly one of {}",
            with_article(&noun),
            one_of(variants)
        );
        let (message, help) = match kinds.as_slice() {
            [kind] => {
                let access = KeyTagged {
                    variant: kind,
                    de: self,
                };
                return visitor.visit_enum(access);
            }
            [] => {
                let guess = keys.iter().find_map(|key| {
                    crate::diagnostic::closest(key, variants.iter().copied())
                        .map(|kind| (key, kind))
                });
                let help = match guess {
                    Some((key, kind)) => format!("did you mean `{kind}` instead of `{key}`?"),
                    None => format!("this {noun} has: {}", keys.join(", ")),
                };
                (format!("{rule}; this one has none"), help)
            }
            several => {
                let listed: Vec<String> = several.iter().map(|kind| format!("`{kind}`")).collect();
                (
                    format!("{rule}; this one has {}", listed.join(" and ")),
                    format!("split it into one {noun} per kind"),
                )
            }
        };
        Err(DeError::Located(Located {
            path: self.path,
            pos: self.node.pos,
            message,
            help: Some(help),
            silent: false,
        }))
    }
}

macro_rules! scalar {
    ($($method:ident => $hint:expr),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
                self.hinted(visitor, $hint)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.hinted(visitor, Hint::Any)
    }

    scalar! {
        deserialize_bool => Hint::Scalar("`true` or `false`"),
        deserialize_i8 => Hint::Scalar("a whole number"),
        deserialize_i16 => Hint::Scalar("a whole number"),
        deserialize_i32 => Hint::Scalar("a whole number"),
        deserialize_i64 => Hint::Scalar("a whole number"),
        deserialize_i128 => Hint::Scalar("a whole number"),
        deserialize_u8 => Hint::Whole { max: u8::MAX.into() },
        deserialize_u16 => Hint::Whole { max: u16::MAX.into() },
        deserialize_u32 => Hint::Whole { max: u32::MAX.into() },
        deserialize_u64 => Hint::Whole { max: u64::MAX.into() },
        deserialize_u128 => Hint::Whole { max: u128::MAX },
        deserialize_f32 => Hint::Scalar("a number"),
        deserialize_f64 => Hint::Scalar("a number"),
        deserialize_char => Hint::Text,
        deserialize_str => Hint::Text,
        deserialize_string => Hint::Text,
        deserialize_bytes => Hint::Text,
        deserialize_byte_buf => Hint::Text,
        deserialize_identifier => Hint::Text,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if matches!(self.node.value, Value::Null) {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.hinted(visitor, Hint::Scalar("nothing"))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.hinted(visitor, Hint::List)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, DeError> {
        self.hinted(visitor, Hint::List)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.hinted(visitor, Hint::List)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // `key:` with nothing after it is an empty mapping.
        if matches!(self.node.value, Value::Null) {
            return visitor.visit_map(Entries::new(&[], &self.path, self.cx, true));
        }
        if let Value::Map(entries) = &self.node.value {
            let result = visitor.visit_map(Entries::new(entries, &self.path, self.cx, true));
            return self.finish(result, &Hint::Mapping);
        }
        self.hinted(visitor, Hint::Mapping)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if let Some(type_name) = name.strip_prefix(KEY_TAGGED) {
            return self.key_tagged(type_name, fields, visitor);
        }
        let hint = Hint::Struct {
            what: self.what.clone().unwrap_or_else(|| what(name)),
        };
        let entries: &[(Node, Node)] = match &self.node.value {
            Value::Map(entries) => entries,
            // A route written `/health:` with nothing under it takes every default.
            Value::Null => &[],
            _ => return self.hinted(visitor, hint),
        };
        let access = Fields::new(entries, name, fields, &hint, &self);
        let result = visitor.visit_map(access);
        self.finish(result, &hint)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let hint = Hint::Enum {
            noun: words(name),
            variants,
        };
        match &self.node.value {
            Value::Str(text) => {
                let text = text.clone();
                let result = visitor.visit_enum(Variant {
                    name: text,
                    name_pos: self.node.pos,
                    name_path: self.path.clone(),
                    content: None,
                    de: &self,
                    hint: hint.clone(),
                });
                self.finish(result, &hint)
            }
            Value::Map(entries) if entries.len() == 1 => {
                let (key, content) = &entries[0];
                let name = key.key_text().unwrap_or_default();
                let result = visitor.visit_enum(Variant {
                    name_path: join(&self.path, &name),
                    name,
                    name_pos: key.pos,
                    content: Some(content),
                    de: &self,
                    hint: hint.clone(),
                });
                self.finish(result, &hint)
            }
            _ => self.hinted(visitor, hint),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// Places a problem a value's own `Deserialize` raised after its deserializer returned (a
/// step in a parallel group that is not a call) at the value.
fn place<T>(
    result: Result<T, DeError>,
    node: &Node,
    path: &str,
    cx: &Context<'_>,
) -> Result<T, DeError> {
    result.map_err(|error| match error {
        DeError::Pending(problem) => DeError::Located(
            NodeDe {
                node,
                path: path.to_owned(),
                cx,
                what: None,
            }
            .locate(problem, &Hint::Any),
        ),
        located => located,
    })
}

/// Reads the value whose key a map access handed out last.
fn value<'de, T: DeserializeSeed<'de>>(
    pending: Option<(&Node, String)>,
    cx: &Context<'_>,
    seed: T,
) -> Result<T::Value, DeError> {
    let Some((node, path)) = pending else {
        return Err(de::Error::custom("a value was asked for before its key"));
    };
    let result = seed.deserialize(NodeDe::new(node, path.clone(), cx));
    place(result, node, &path, cx)
}

/// The items of a list, without the absent ones.
struct Items<'n> {
    items: &'n [Node],
    path: String,
    cx: &'n Context<'n>,
    position: usize,
    kept: usize,
}

impl<'de, 'n> SeqAccess<'de> for Items<'n> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        while let Some(item) = self.items.get(self.position) {
            let position = self.position;
            self.position += 1;
            let path = index(&self.path, position);
            if self.cx.absent.contains(&path) {
                continue;
            }
            if self.kept != position {
                self.cx
                    .moved
                    .borrow_mut()
                    .insert(index(&self.path, self.kept), path.clone());
            }
            self.kept += 1;
            let result = seed.deserialize(NodeDe::new(item, path.clone(), self.cx));
            return place(result, item, &path, self.cx).map(Some);
        }
        Ok(None)
    }
}

/// The entries of a mapping read as a map (services, routes, baggage) or as whatever a
/// type's own visitor makes of it, without the absent ones.
struct Entries<'n> {
    entries: std::slice::Iter<'n, (Node, Node)>,
    path: String,
    cx: &'n Context<'n>,
    value: Option<(&'n Node, String)>,
    /// Whether an entry is where its key is. In a map of names the writer chose (a service, a
    /// route), a problem with an entry is about its name; anywhere else, about its value.
    named: bool,
}

impl<'n> Entries<'n> {
    fn new(entries: &'n [(Node, Node)], path: &str, cx: &'n Context<'n>, named: bool) -> Self {
        Entries {
            entries: entries.iter(),
            path: path.to_owned(),
            cx,
            value: None,
            named,
        }
    }
}

impl<'de, 'n> MapAccess<'de> for Entries<'n> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        for (key, value) in self.entries.by_ref() {
            let Some(name) = key.key_text() else {
                let message = "a key must be a plain name".to_owned();
                self.cx.issue(key.pos, self.path.clone(), message, None);
                continue;
            };
            let path = join(&self.path, &name);
            if self.cx.absent.contains(&path) {
                continue;
            }
            if self.named {
                self.cx.locate(&path, key.pos);
            }
            let name_node = Node {
                value: Value::Str(name),
                pos: key.pos,
            };
            // The key is read without recording a position: the entry's is recorded above, or
            // by its value.
            let key_de = NodeDe {
                node: &name_node,
                path: path.clone(),
                cx: self.cx,
                what: None,
            };
            let key = place(seed.deserialize(key_de), &name_node, &path, self.cx)?;
            self.value = Some((value, path));
            return Ok(Some(key));
        }
        Ok(None)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, DeError> {
        value(self.value.take(), self.cx, seed)
    }
}

/// The fields of a struct: known keys only (each unknown one is reported and skipped), without
/// the absent ones, plus placeholders for required fields that are absent.
struct Fields<'n> {
    fields: std::vec::IntoIter<(&'static str, &'n Node)>,
    path: String,
    cx: &'n Context<'n>,
    value: Option<(&'n Node, String)>,
}

impl<'n> Fields<'n> {
    fn new(
        entries: &'n [(Node, Node)],
        type_name: &'static str,
        names: &'static [&'static str],
        hint: &Hint,
        de: &NodeDe<'n>,
    ) -> Self {
        let cx = de.cx;
        let mut fields = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let Some(name) = key.key_text() else {
                let message = "a key must be a plain name".to_owned();
                cx.issue(key.pos, de.path.clone(), message, None);
                continue;
            };
            let path = join(&de.path, &name);
            match names.iter().find(|field| **field == name) {
                Some(field) if !cx.absent.contains(&path) => fields.push((*field, value)),
                Some(_) => {}
                None => cx.issue(
                    key.pos,
                    path,
                    format!("unknown field `{name}` in {}", hint.what()),
                    Some(unknown_name_help(&name, names)),
                ),
            }
        }
        for field in names {
            let path = join(&de.path, field);
            if cx.absent.contains(&path)
                && let Some(placeholder) = cx.placeholders.get(&(type_name, *field))
            {
                fields.push((field, placeholder));
            }
        }
        Fields {
            fields: fields.into_iter(),
            path: de.path.clone(),
            cx,
            value: None,
        }
    }
}

impl<'de, 'n> MapAccess<'de> for Fields<'n> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((name, node)) = self.fields.next() else {
            return Ok(None);
        };
        self.value = Some((node, join(&self.path, name)));
        seed.deserialize(name.into_deserializer()).map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, DeError> {
        value(self.value.take(), self.cx, seed)
    }
}

/// An enum written `name` (no content) or `{name: content}`.
struct Variant<'a, 'n> {
    name: String,
    name_pos: Pos,
    /// The path of the variant: the enum's path for a bare name, `enum.name` for a mapping.
    name_path: String,
    content: Option<&'n Node>,
    de: &'a NodeDe<'n>,
    hint: Hint,
}

impl<'a, 'n> Variant<'a, 'n> {
    fn error(&self, message: String, help: String) -> DeError {
        DeError::Located(Located {
            path: self.name_path.clone(),
            pos: self.name_pos,
            message,
            help: Some(help),
            silent: false,
        })
    }

    /// How the content is named: "a uniform latency model".
    fn what(&self) -> String {
        with_article(&format!("{} {}", self.name, self.hint.noun()))
    }

    /// The deserializer of the content, or why there is none to read.
    fn content(self) -> Result<NodeDe<'n>, DeError> {
        let name = &self.name;
        let Some(content) = self.content else {
            let help = format!("write `{{{name}: <parameters>}}`");
            return Err(self.error(format!("`{name}` needs its parameters"), help));
        };
        if self.de.cx.absent.contains(&self.name_path) {
            // The content was broken and reported; so is the enum.
            return Err(DeError::Located(Located {
                path: self.de.path.clone(),
                pos: self.de.node.pos,
                message: String::new(),
                help: None,
                silent: true,
            }));
        }
        Ok(NodeDe::new(content, self.name_path, self.de.cx))
    }
}

impl<'de, 'a, 'n> EnumAccess<'de> for Variant<'a, 'n> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let name = self.name.clone().into_deserializer();
        match seed.deserialize::<de::value::StringDeserializer<DeError>>(name) {
            Ok(value) => Ok((value, self)),
            Err(DeError::Pending(problem)) => {
                let located = self.de.locate(problem, &self.hint);
                Err(DeError::Located(Located {
                    path: self.name_path.clone(),
                    pos: self.name_pos,
                    ..located
                }))
            }
            Err(located) => Err(located),
        }
    }
}

impl<'de, 'a, 'n> VariantAccess<'de> for Variant<'a, 'n> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.content {
            None
            | Some(Node {
                value: Value::Null, ..
            }) => Ok(()),
            Some(_) => {
                let name = &self.name;
                let help = format!("write the bare name `{name}`");
                Err(self.error(format!("`{name}` takes no parameters"), help))
            }
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let what = self.what();
        let mut de = self.content()?;
        de.what = Some(what);
        let (node, path, cx) = (de.node, de.path.clone(), de.cx);
        place(seed.deserialize(de), node, &path, cx)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, DeError> {
        self.content()?.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let what = self.what();
        let mut de = self.content()?;
        de.what = Some(what);
        de.deserialize_struct("", fields, visitor)
    }
}

/// A key-tagged enum whose kind is `variant`: the whole mapping is the variant's content.
struct KeyTagged<'n> {
    variant: &'static str,
    de: NodeDe<'n>,
}

impl<'de, 'n> EnumAccess<'de> for KeyTagged<'n> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let value = seed.deserialize(self.variant.into_deserializer())?;
        Ok((value, self))
    }
}

impl<'de, 'n> VariantAccess<'de> for KeyTagged<'n> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, DeError> {
        self.de.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.de.deserialize_struct(self.variant, fields, visitor)
    }
}
