//! Which format a trace file is in, from its first JSON value.
//!
//! The formats differ in their outermost shape: an OTLP/JSON document is an object with
//! `resourceSpans`, a Jaeger download an object with `data`, a Zipkin v2 file an array of span
//! objects (or of traces, arrays of spans). The sniffer reads keys until one decides, skipping
//! the values of any others without keeping them, and stops right there: a multi-gigabyte
//! Jaeger download is decided at its first key, not after parsing it.

use std::cell::Cell;
use std::fmt;
use std::io::BufReader;
use std::path::Path;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{TraceFileError, TraceFormat};

/// Says what `path` holds.
pub(super) fn detect(path: &Path) -> Result<TraceFormat, TraceFileError> {
    let file = super::open(path)?;
    let mut reader = serde_json::Deserializer::from_reader(BufReader::new(file));
    let verdict = Cell::new(None);
    let outcome = reader.deserialize_any(Sniff {
        verdict: &verdict,
        depth: 0,
    });
    if let Some(format) = verdict.get() {
        return Ok(format);
    }
    let found = match outcome {
        Ok(found) => found,
        Err(e) if e.is_eof() && e.line() <= 1 && e.column() == 0 => "the file is empty".to_owned(),
        Err(e) if e.is_io() => {
            return Err(TraceFileError::Read {
                path: path.to_owned(),
                source: e.into(),
            });
        }
        Err(e) => format!(
            "it is not JSON (line {}, column {}: {})",
            e.line(),
            e.column(),
            super::without_position(&e)
        ),
    };
    Err(TraceFileError::UnknownFormat {
        path: path.to_owned(),
        found,
    })
}

/// Reads the first value until its shape decides the format. The verdict is left in the cell
/// and the walk stops with an error, so that nothing after the deciding key is read; with no
/// verdict, the value describes what was found instead.
struct Sniff<'a> {
    verdict: &'a Cell<Option<TraceFormat>>,
    /// 0 for the outermost value, 1 for the first element of an outermost array.
    depth: u8,
}

impl Sniff<'_> {
    fn decide<E: de::Error>(&self, format: TraceFormat) -> E {
        self.verdict.set(Some(format));
        E::custom("format decided")
    }
}

impl<'de> Visitor<'de> for Sniff<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
        let mut keys = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resourceSpans" | "resource_spans" => {
                    return Err(self.decide(TraceFormat::OtlpJson));
                }
                "data" if self.depth == 0 => return Err(self.decide(TraceFormat::JaegerJson)),
                // Keys only a Zipkin v2 span has (`id` alone, without `spanID`, is the span id;
                // Jaeger writes `traceID`, OTLP `traceId` only inside `resourceSpans`).
                "localEndpoint" | "remoteEndpoint" | "parentId" | "id" | "annotations"
                    if self.depth == 1 =>
                {
                    return Err(self.decide(TraceFormat::ZipkinJson));
                }
                _ => {}
            }
            if keys.len() < 6 {
                keys.push(format!("`{key}`"));
            }
            map.next_value::<IgnoredAny>()?;
        }
        let what = if self.depth == 0 {
            "an object"
        } else {
            "an array of objects"
        };
        Ok(match keys.is_empty() {
            true => format!("{what} without keys"),
            false => format!("{what} with the keys {}", keys.join(", ")),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
        match self.depth {
            0 => match seq.next_element_seed(SniffSeed {
                verdict: self.verdict,
                depth: 1,
            })? {
                Some(found) => {
                    // Nothing decided: the rest is read (unkept) only so that the description,
                    // not a complaint about trailing values, is what the user sees.
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(found)
                }
                // `[]` is what Zipkin's API answers when no trace matched.
                None => Err(self.decide(TraceFormat::ZipkinJson)),
            },
            // An array of arrays: Zipkin's `/api/v2/traces` answers one array per trace.
            _ => Err(self.decide(TraceFormat::ZipkinJson)),
        }
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<String, E> {
        Ok(self.scalar("a string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<String, E> {
        Ok(self.scalar("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<String, E> {
        Ok(self.scalar("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<String, E> {
        Ok(self.scalar("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<String, E> {
        Ok(self.scalar("a number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(self.scalar("null"))
    }
}

impl Sniff<'_> {
    fn scalar(&self, what: &str) -> String {
        match self.depth {
            0 => format!("it holds {what}"),
            _ => format!("an array of values such as {what}"),
        }
    }
}

struct SniffSeed<'a> {
    verdict: &'a Cell<Option<TraceFormat>>,
    depth: u8,
}

impl<'de> DeserializeSeed<'de> for SniffSeed<'_> {
    type Value = String;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(Sniff {
            verdict: self.verdict,
            depth: self.depth,
        })
    }
}
