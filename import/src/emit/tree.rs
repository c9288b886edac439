//! The scenario as a tree of values in the order the model declares its fields (a JSON value
//! would sort every mapping's keys), made by the model's own `Serialize` impls.

use std::fmt;

use serde::ser::{self, Serialize};

/// A serialized value, mappings in declaration order.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tree {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Tree>),
    Map(Vec<(String, Tree)>),
}

/// Why a value could not become a tree: only a mapping key that is not text.
#[derive(Debug)]
pub(super) struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// Serializes `value` into a tree.
pub(super) fn to_tree<T: Serialize + ?Sized>(value: &T) -> Result<Tree, Error> {
    value.serialize(TreeSerializer)
}

struct TreeSerializer;

/// A sequence being built; `variant` wraps it as `{variant: [...]}`.
pub(super) struct SeqBuilder {
    items: Vec<Tree>,
    variant: Option<&'static str>,
}

/// A mapping being built; `variant` wraps it as `{variant: {...}}`.
pub(super) struct MapBuilder {
    entries: Vec<(String, Tree)>,
    key: Option<String>,
    variant: Option<&'static str>,
}

fn wrap(variant: Option<&'static str>, tree: Tree) -> Tree {
    match variant {
        Some(name) => Tree::Map(vec![(name.to_owned(), tree)]),
        None => tree,
    }
}

/// The scalar methods: each value converted into its tree variant.
macro_rules! scalars {
    ($($method:ident($ty:ty) => $variant:ident),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result<Tree, Error> {
            Ok(Tree::$variant(v.into()))
        })*
    };
}

impl ser::Serializer for TreeSerializer {
    type Ok = Tree;
    type Error = Error;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = MapBuilder;

    scalars! {
        serialize_bool(bool) => Bool,
        serialize_i8(i8) => Int,
        serialize_i16(i16) => Int,
        serialize_i32(i32) => Int,
        serialize_i64(i64) => Int,
        serialize_u8(u8) => UInt,
        serialize_u16(u16) => UInt,
        serialize_u32(u32) => UInt,
        serialize_u64(u64) => UInt,
        serialize_f32(f32) => Float,
        serialize_f64(f64) => Float,
        serialize_char(char) => Str,
        serialize_str(&str) => Str,
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Tree, Error> {
        Ok(Tree::Seq(
            v.iter().map(|b| Tree::UInt((*b).into())).collect(),
        ))
    }
    fn serialize_none(self) -> Result<Tree, Error> {
        Ok(Tree::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Tree, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Tree, Error> {
        Ok(Tree::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Tree, Error> {
        Ok(Tree::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Tree, Error> {
        Ok(Tree::Str(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Tree, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Tree, Error> {
        Ok(wrap(Some(variant), value.serialize(self)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, Error> {
        Ok(SeqBuilder {
            items: Vec::with_capacity(len.unwrap_or(0)),
            variant: None,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqBuilder, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, Error> {
        Ok(SeqBuilder {
            items: Vec::with_capacity(len),
            variant: Some(variant),
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, Error> {
        Ok(MapBuilder {
            entries: Vec::with_capacity(len.unwrap_or(0)),
            key: None,
            variant: None,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<MapBuilder, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapBuilder, Error> {
        Ok(MapBuilder {
            entries: Vec::with_capacity(len),
            key: None,
            variant: Some(variant),
        })
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Tree;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.items.push(to_tree(value)?);
        Ok(())
    }
    fn end(self) -> Result<Tree, Error> {
        Ok(wrap(self.variant, Tree::Seq(self.items)))
    }
}

/// Tuples, tuple structs and tuple variants are sequences here: each forwards to
/// [`ser::SerializeSeq`] (a variant's name was kept by `serialize_tuple_variant`).
macro_rules! serialize_as_seq {
    ($($trait:ident :: $method:ident),* $(,)?) => {$(
        impl ser::$trait for SeqBuilder {
            type Ok = Tree;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                ser::SerializeSeq::serialize_element(self, value)
            }
            fn end(self) -> Result<Tree, Error> {
                ser::SerializeSeq::end(self)
            }
        }
    )*};
}

serialize_as_seq!(
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for MapBuilder {
    type Ok = Tree;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        match to_tree(key)? {
            Tree::Str(key) => self.key = Some(key),
            other => {
                return Err(Error(format!(
                    "a mapping key must be text, found {other:?}"
                )));
            }
        }
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self.key.take().unwrap_or_default();
        self.entries.push((key, to_tree(value)?));
        Ok(())
    }
    fn end(self) -> Result<Tree, Error> {
        Ok(wrap(self.variant, Tree::Map(self.entries)))
    }
}

/// Structs and struct variants are mappings here, their fields in declaration order (a
/// variant's name was kept by `serialize_struct_variant`).
macro_rules! serialize_as_map {
    ($($trait:ident),* $(,)?) => {$(
        impl ser::$trait for MapBuilder {
            type Ok = Tree;
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.entries.push((key.to_owned(), to_tree(value)?));
                Ok(())
            }
            fn end(self) -> Result<Tree, Error> {
                ser::SerializeMap::end(self)
            }
        }
    )*};
}

serialize_as_map!(SerializeStruct, SerializeStructVariant);
