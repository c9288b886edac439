//! Trace and span identifiers.
//!
//! Both are fixed-size byte arrays. Their text form is lowercase hex (as in `traceparent` and
//! OTLP/JSON); parsing accepts either case, because OTLP/JSON ids are case-insensitive and some
//! producers (the OpenTelemetry project's own example among them) write them in upper case.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a hex id could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdParseError {
    /// How many hex digits the id needs.
    pub expected_len: usize,
    /// The text that was given.
    pub input: String,
}

impl fmt::Display for IdParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected {} hex digits, got {:?}",
            self.expected_len, self.input
        )
    }
}

impl std::error::Error for IdParseError {}

fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], IdParseError> {
    let err = || IdParseError {
        expected_len: N * 2,
        input: s.chars().take(80).collect(),
    };
    if s.len() != N * 2 {
        return Err(err());
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| err())?;
    Ok(out)
}

macro_rules! id_type {
    ($name:ident, $len:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The all-zero id, which W3C Trace Context and OTLP treat as "no id".
            pub const INVALID: Self = Self([0; $len]);

            /// True unless every byte is zero.
            pub fn is_valid(&self) -> bool {
                self.0 != [0; $len]
            }

            /// Builds the id from raw bytes; `None` unless there are exactly the right number.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(bytes).ok().map(Self)
            }

            /// Lowercase hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex::<$len>(s).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(TraceId, 16, "A 16-byte trace id.");
id_type!(SpanId, 8, "An 8-byte span id.");

impl TraceId {
    /// The id as one big-endian integer (handy for sampling arithmetic).
    pub fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }
}

impl SpanId {
    /// The id as one big-endian integer.
    pub fn as_u64(&self) -> u64 {
        u64::from_be_bytes(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_case_insensitive_parse() {
        let t: TraceId = "5B8EFFF798038103D269B633813FC60C".parse().unwrap();
        assert_eq!(t.to_hex(), "5b8efff798038103d269b633813fc60c");
        let s: SpanId = "eee19b7ec3c1b174".parse().unwrap();
        assert_eq!(s.to_string(), "eee19b7ec3c1b174");
        assert!(s.is_valid());
        assert!(!SpanId::INVALID.is_valid());
    }

    #[test]
    fn wrong_length_or_non_hex_is_rejected() {
        assert!("abc".parse::<SpanId>().is_err());
        assert!("zzzzzzzzzzzzzzzz".parse::<SpanId>().is_err());
        let err = "12".parse::<TraceId>().unwrap_err();
        assert_eq!(err.expected_len, 32);
    }

    #[test]
    fn serde_uses_hex_strings() {
        let s = SpanId([1, 2, 3, 4, 5, 6, 7, 8]);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"0102030405060708\"");
        let back: SpanId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
