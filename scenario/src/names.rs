//! The names serde gives an enum's variants, read from the serde definition itself.
//!
//! `LatencyModel::kinds()` and `kind()` (and their arrival and step counterparts) must say
//! exactly what the YAML reader accepts and the writer writes. Rather than keep a second list
//! of names by hand, they ask serde: [`variants`] runs a type's `Deserialize` against a
//! deserializer that only records the variant list it is handed, and [`variant`] runs a
//! value's `Serialize` against a serializer that only records the variant name it is handed.
//! A variant added to the enum is in both at once, under its serde name.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{self, Impossible, Serialize, Serializer};

/// What the probes below stop with: the name they were after, or that there was none.
#[derive(Debug)]
pub(crate) enum Probe {
    Variants(&'static [&'static str]),
    Variant(&'static str),
    NotAnEnum,
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an enum")
    }
}

impl std::error::Error for Probe {}

impl de::Error for Probe {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probe::NotAnEnum
    }
}

impl ser::Error for Probe {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probe::NotAnEnum
    }
}

/// The variant names `deserialize` passes to `deserialize_enum`, in declaration order; empty
/// for a type that is not an enum (or not read as one: ask a step's derived, tagged reader).
pub(crate) fn variants<T>(
    deserialize: impl FnOnce(VariantList) -> Result<T, Probe>,
) -> &'static [&'static str] {
    match deserialize(VariantList) {
        Err(Probe::Variants(names)) => names,
        _ => &[],
    }
}

/// The variant name serde writes for `value`; empty for a value that is not an enum variant.
pub(crate) fn variant(serialize: impl FnOnce(VariantName) -> Result<(), Probe>) -> &'static str {
    match serialize(VariantName) {
        Err(Probe::Variant(name)) => name,
        _ => "",
    }
}

/// A deserializer that answers `deserialize_enum` by handing back its variant list.
pub(crate) struct VariantList;

impl<'de> Deserializer<'de> for VariantList {
    type Error = Probe;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probe> {
        Err(Probe::NotAnEnum)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probe> {
        Err(Probe::Variants(variants))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

/// Serializer methods of one argument that are not about an enum variant.
macro_rules! not_an_enum {
    ($($method:ident: $type:ty),* $(,)?) => {
        $(
            fn $method(self, _: $type) -> Result<(), Probe> {
                Err(Probe::NotAnEnum)
            }
        )*
    };
}

/// A serializer that answers the `serialize_*_variant` calls with the variant's name.
pub(crate) struct VariantName;

impl Serializer for VariantName {
    type Ok = ();
    type Error = Probe;
    type SerializeSeq = Impossible<(), Probe>;
    type SerializeTuple = Impossible<(), Probe>;
    type SerializeTupleStruct = Impossible<(), Probe>;
    type SerializeTupleVariant = Impossible<(), Probe>;
    type SerializeMap = Impossible<(), Probe>;
    type SerializeStruct = Impossible<(), Probe>;
    type SerializeStructVariant = Impossible<(), Probe>;

    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<(), Probe> {
        Err(Probe::Variant(v))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        v: &'static str,
        _: &T,
    ) -> Result<(), Probe> {
        Err(Probe::Variant(v))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        v: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Probe> {
        Err(Probe::Variant(v))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        v: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Probe> {
        Err(Probe::Variant(v))
    }

    not_an_enum! {
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_f32: f32, serialize_f64: f64, serialize_char: char,
        serialize_str: &str, serialize_bytes: &[u8], serialize_unit_struct: &'static str,
    }

    fn serialize_none(self) -> Result<(), Probe> {
        Err(Probe::NotAnEnum)
    }

    fn serialize_unit(self) -> Result<(), Probe> {
        Err(Probe::NotAnEnum)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Probe> {
        Err(Probe::NotAnEnum)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Probe> {
        Err(Probe::NotAnEnum)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Probe> {
        Err(Probe::NotAnEnum)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Probe> {
        Err(Probe::NotAnEnum)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Probe> {
        Err(Probe::NotAnEnum)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Probe> {
        Err(Probe::NotAnEnum)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Probe> {
        Err(Probe::NotAnEnum)
    }
}
