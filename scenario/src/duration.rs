//! Durations as scenario files write them: `800ms`, `1.5s`, `2m`, `1m 30s`.
//!
//! A duration always carries its unit. Latency parameters are plain numbers of milliseconds,
//! so a unit-less `30` in a duration field would be ambiguous between seconds and
//! milliseconds; rejecting it costs the writer two characters and removes the guess.

use std::time::Duration;

/// Reads a duration with a unit. Besides humantime's syntax (`800ms`, `2m`, `1h 30m`), a
/// decimal number of one unit is accepted (`1.5s`, `0.25ms`), because that is how people
/// write latencies.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
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

/// Serde for a required `Duration` field written as text.
pub(crate) mod required {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format(*value))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse(&text).map_err(D::Error::custom)
    }
}

/// Serde for an optional `Duration` field written as text.
pub(crate) mod optional {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

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
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => super::parse(&text).map(Some).map_err(D::Error::custom),
            None => Ok(None),
        }
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
