//! The ways a latency model may be written, besides the full `{<model>: {<parameters>}}`
//! that the derives on [`LatencyModel`] read: a duration (`5ms`) and `{constant: 5}`, both a
//! fixed latency. They hold everywhere a model is read: routes, work, the load's think time,
//! database, cache and queue steps, faults, and the admin API's JSON.

use std::fmt;

use serde::de::value::EnumAccessDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, VariantAccess,
    Visitor,
};

use super::LatencyModel;
use crate::decode::with_help;

/// Reads a model in any of its forms.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LatencyModel, D::Error> {
    d.deserialize_enum("LatencyModel", LatencyModel::kinds(), Written)
}

struct Written;

impl<'de> Visitor<'de> for Written {
    type Value = LatencyModel;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a latency model")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<LatencyModel, A::Error> {
        match data.variant_seed(NameSeed)? {
            (Name::Kind(kind), variant) => {
                // The full form: the derived reader takes over with the name already read.
                LatencyModel::deserialize(EnumAccessDeserializer::new(Replay { kind, variant }))
            }
            (Name::Fixed(ms), variant) => {
                variant.unit_variant()?;
                Ok(LatencyModel::Constant { ms })
            }
        }
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<LatencyModel, E> {
        Err(number(
            &format!("the integer `{value}`"),
            &value.to_string(),
        ))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<LatencyModel, E> {
        Err(number(
            &format!("the integer `{value}`"),
            &value.to_string(),
        ))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<LatencyModel, E> {
        Err(number(&format!("the number `{value}`"), &value.to_string()))
    }
}

/// A bare number is ambiguous (milliseconds? seconds?); say how to write it.
fn number<E: de::Error>(found: &str, value: &str) -> E {
    E::custom(with_help(
        format!("expected a latency model, found {found}"),
        format!("for a fixed latency write `{{constant: {value}}}` or `{value}ms`"),
    ))
}

/// What the name of a latency model turned out to be.
enum Name {
    /// One of the models.
    Kind(&'static str),
    /// A duration, the shorthand of a fixed latency, in milliseconds.
    Fixed(f64),
}

struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Name;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Name, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for NameSeed {
    type Value = Name;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a latency model or a duration")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Name, E> {
        let kinds = LatencyModel::kinds();
        if let Some(kind) = kinds.iter().find(|kind| **kind == text) {
            return Ok(Name::Kind(kind));
        }
        // Text that starts like a number is meant as a duration; anything else as a model.
        if text
            .trim_start()
            .starts_with(|c: char| c.is_ascii_digit() || c == '.')
        {
            let duration = crate::duration::parse(text).map_err(E::custom)?;
            return Ok(Name::Fixed(duration.as_secs_f64() * 1000.0));
        }
        Err(E::unknown_variant(text, kinds))
    }
}

/// Hands the derived reader a name that was already read.
struct Replay<V> {
    kind: &'static str,
    variant: V,
}

impl<'de, V: VariantAccess<'de>> EnumAccess<'de> for Replay<V> {
    type Error = V::Error;
    type Variant = V;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, V), V::Error> {
        let value = seed.deserialize(self.kind.into_deserializer())?;
        Ok((value, self.variant))
    }
}

/// The parameters of `constant`: `{ms: 5}`, or the number alone.
pub(super) fn constant_ms<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(ConstantMs)
}

struct ConstantMs;

impl<'de> Visitor<'de> for ConstantMs {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`{ms: <milliseconds>}` or a number of milliseconds")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<f64, E> {
        Ok(value as f64)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<f64, E> {
        Ok(value as f64)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<f64, E> {
        Ok(value)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<f64, A::Error> {
        const FIELDS: &[&str] = &["ms"];
        let mut ms = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != FIELDS[0] {
                return Err(de::Error::unknown_field(&key, FIELDS));
            }
            if ms.replace(map.next_value::<f64>()?).is_some() {
                return Err(de::Error::duplicate_field(FIELDS[0]));
            }
        }
        ms.ok_or_else(|| de::Error::missing_field(FIELDS[0]))
    }
}

/// The JSON Schema of `constant`'s parameters.
pub(super) fn constant_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "oneOf": [
            {
                "type": "number",
                "description": "The time, in milliseconds.",
            },
            {
                "type": "object",
                "properties": {
                    "ms": { "type": "number", "description": "The time, in milliseconds." },
                },
                "required": ["ms"],
                "additionalProperties": false,
            },
        ]
    })
}

/// Adds the duration shorthand (`5ms`) to the derived schema of the full forms.
pub(super) fn add_shorthands(schema: &mut schemars::Schema) {
    if let Some(forms) = schema
        .get_mut("oneOf")
        .and_then(serde_json::Value::as_array_mut)
    {
        forms.push(serde_json::json!({
            "type": "string",
            "description": "A fixed latency written as a duration: `5ms`, `1.5s`.",
            "pattern": "^\\s*[0-9.]",
        }));
    }
}
