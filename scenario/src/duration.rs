//! Durations as scenario files write them: `800ms`, `1.5s`, `2m`, `1m 30s`.
//!
//! A duration always carries its unit. Latency parameters are plain numbers of milliseconds,
//! so a unit-less `30` in a duration field would be ambiguous between seconds and
//! milliseconds; rejecting it costs the writer two characters and removes the guess.

use std::time::Duration;

/// Reads a duration with a unit. Besides humantime's syntax (`800ms`, `2m`, `1h 30m`), a
/// decimal number of one unit is accepted (`1.5s`, `0.25ms`), because that is how people
/// write latencies. Every duration tracelab reads, in a scenario or on the command line, goes
/// through here.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(duration) = humantime::parse_duration(text) {
        return Ok(duration);
    }
    if let Some(duration) = parse_decimal(text) {
        return Ok(duration);
    }
    Err(format!(
        "`{text}` is not a duration; write a number with a unit, such as `800ms`, `1.5s` or `2m`"
    ))
}

/// Reads `<decimal><unit>` for the units people use with fractions.
fn parse_decimal(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.trim().parse().ok()?;
    let seconds_per_unit = match unit {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(value * seconds_per_unit).ok()
}

/// Formats a duration so that [`parse`] reads it back exactly.
pub(crate) fn format(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// Reads a duration written as text; a bare number is refused with a hint to add the unit.
struct DurationVisitor;

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a duration such as `800ms` or `30s`")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Duration, E> {
        Err(unitless(
            &format!("the integer `{value}`"),
            &value.to_string(),
        ))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Duration, E> {
        Err(unitless(
            &format!("the integer `{value}`"),
            &value.to_string(),
        ))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Duration, E> {
        Err(unitless(
            &format!("the number `{value}`"),
            &value.to_string(),
        ))
    }
}

fn unitless<E: serde::de::Error>(found: &str, number: &str) -> E {
    E::custom(crate::decode::with_help(
        format!("expected a duration with a unit, found {found}"),
        format!("a duration needs a unit: `{number}s` for seconds, `{number}ms` for milliseconds"),
    ))
}

/// The JSON Schema of a duration: text of a number and a unit.
pub(crate) fn schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "description": "A duration with its unit: `800ms`, `1.5s`, `2m`, `1m 30s`.",
        "pattern": "^\\s*[0-9]",
    })
}

/// Serde for a required `Duration` field written as text.
pub(crate) mod required {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format(*value))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(super::DurationVisitor)
    }
}

/// Serde for an optional `Duration` field written as text.
pub(crate) mod optional {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_str(&super::format(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        /// A duration that may be `null`.
        struct Written(Duration);

        impl<'de> Deserialize<'de> for Written {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                super::required::deserialize(deserializer).map(Written)
            }
        }

        Ok(Option::<Written>::deserialize(deserializer)?.map(|written| written.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_units_and_fractions() {
        assert_eq!(parse("800ms"), Ok(Duration::from_millis(800)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("0.5ms"), Ok(Duration::from_micros(500)));
    }

    #[test]
    fn rejects_numbers_without_unit() {
        let message = parse("30").unwrap_err();
        assert!(message.contains("with a unit"), "{message}");
        assert!(parse("fast").is_err());
        assert!(parse("-1s").is_err());
    }

    #[test]
    fn format_round_trips() {
        for duration in [
            Duration::from_millis(800),
            Duration::from_secs(90),
            Duration::from_micros(1500),
        ] {
            assert_eq!(parse(&format(duration)), Ok(duration));
        }
    }
}
