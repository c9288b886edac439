//! The `baggage` header (W3C Baggage): parsing, percent-encoding and rendering within limits.
//!
//! A header looks like `userId=alice,serverNode=DF%2028;region=eu,isProduction=false`: a list
//! of `key=value` members, each optionally followed by `;`-separated properties (`;prop` or
//! `;prop=value`). Keys are RFC 7230 tokens; values are percent-encoded UTF-8.
//!
//! Choices where the specification leaves room:
//! - An invalid member is skipped and the rest of the header kept (the specification allows
//!   dropping it). Unlike `tracestate`, baggage members are independent application data, so
//!   one broken member from one library should not erase everybody else's. Every skipped
//!   member is reported in [`ParsedBaggage::rejected`] with the reason.
//! - A member with a malformed property is invalid as a whole: the property belongs to the
//!   member's grammar, and keeping a half-understood member would misreport it.
//! - Properties are kept, verbatim (still percent-encoded), and sent on again.
//! - A key that appears twice keeps its first (left-most) value, as for `tracestate`.
//! - Limits: at most 64 members and 8192 bytes. Members past a limit are dropped whole, both
//!   when reading and when writing; a partial member is never produced.

use thiserror::Error;

use crate::wire::{excerpt, trim_ows};

/// The most members a baggage header carries.
pub const MAX_MEMBERS: usize = 64;
/// The most bytes a baggage header value carries.
pub const MAX_BYTES: usize = 8192;

/// One valid list-member.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BaggageMember {
    /// The key, an RFC 7230 token.
    pub key: String,
    /// The value, percent-decoded. Byte sequences that are not UTF-8 became U+FFFD, as the
    /// specification requires.
    pub value: String,
    /// The properties, in order, as received.
    pub properties: Vec<BaggageProperty>,
}

/// One property of a member: `;key` or `;key=value`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BaggageProperty {
    /// The property key, an RFC 7230 token.
    pub key: String,
    /// The property value exactly as received (still percent-encoded), if it had one.
    pub value: Option<String>,
}

impl BaggageProperty {
    /// The property as written on the wire, without the leading `;`.
    pub fn to_wire(&self) -> String {
        match &self.value {
            Some(value) => format!("{}={value}", self.key),
            None => self.key.clone(),
        }
    }
}

/// The outcome of reading baggage: what was kept and what was skipped, and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedBaggage {
    /// The valid members, in order, keys unique, within the limits.
    pub members: Vec<BaggageMember>,
    /// One entry per skipped member.
    pub rejected: Vec<BaggageError>,
}

/// Why one baggage member was skipped. The messages are shown to students.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BaggageError {
    /// A member without `=`.
    #[error("baggage member {member:?} has no '=' between key and value")]
    MissingEquals {
        /// The member, shortened if long.
        member: String,
    },
    /// A member with nothing before `=`.
    #[error("baggage member {member:?} has an empty key")]
    EmptyKey {
        /// The member, shortened if long.
        member: String,
    },
    /// A key that is not an RFC 7230 token.
    #[error(
        "baggage key {key:?} contains {found:?}; keys are HTTP tokens (letters, digits and \
         !#$%&'*+-.^_`|~)"
    )]
    InvalidKey {
        /// The key, shortened if long.
        key: String,
        /// The first character that is not allowed.
        found: char,
    },
    /// A value with a character that must be percent-encoded.
    #[error(
        "baggage value of key {key:?} contains {found:?}, which must be percent-encoded \
         (spaces, quotes, commas, semicolons, backslashes and non-ASCII are not allowed raw)"
    )]
    InvalidValueChar {
        /// The member's key, shortened if long.
        key: String,
        /// The first character that is not allowed.
        found: char,
    },
    /// A `%` not followed by two hex digits.
    #[error("baggage value of key {key:?} has a '%' that is not followed by two hex digits")]
    BadPercentEncoding {
        /// The member's key, shortened if long.
        key: String,
    },
    /// A property that is not `key` or `key=value`.
    #[error("baggage member {key:?} has an invalid property {property:?}")]
    InvalidProperty {
        /// The member's key, shortened if long.
        key: String,
        /// The property, shortened if long.
        property: String,
    },
    /// A second member with a key already seen.
    #[error("baggage key {key:?} appears again; the first value is kept")]
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// A member past the 64th.
    #[error("baggage member {key:?} is past the limit of 64 members and was dropped")]
    TooManyMembers {
        /// The dropped member's key.
        key: String,
    },
    /// A member that would take the header past 8192 bytes.
    #[error("baggage member {key:?} would take the header past 8192 bytes and was dropped")]
    TooLarge {
        /// The dropped member's key.
        key: String,
    },
}

/// Parses every value of the `baggage` header that was received, in order, as one list.
/// Empty members and white space around members, keys, values and properties are skipped.
pub fn parse(values: &[&str]) -> ParsedBaggage {
    let mut parsed = ParsedBaggage::default();
    let mut budget = Budget::default();
    for member in values
        .iter()
        .flat_map(|value| value.split(','))
        .map(trim_ows)
        .filter(|member| !member.is_empty())
    {
        let outcome = parse_member(member).and_then(|valid| {
            if parsed.members.iter().any(|seen| seen.key == valid.key) {
                return Err(BaggageError::DuplicateKey { key: valid.key });
            }
            // The size counted is that of the member as received, so a header we accept is
            // one we could have sent.
            budget.take(&valid.key, member.len())?;
            Ok(valid)
        });
        match outcome {
            Ok(valid) => parsed.members.push(valid),
            Err(error) => parsed.rejected.push(error),
        }
    }
    parsed
}

/// Renders members as one header value, in the order given, percent-encoding values.
///
/// Members that would break the limits are left out (reported in the second element), so
/// the result is always a valid header; invalid keys and properties are left out too, since
/// members built by a program have not been through [`parse`].
pub fn render<'a>(
    members: impl IntoIterator<Item = &'a BaggageMember>,
) -> (String, Vec<BaggageError>) {
    let mut out = String::new();
    let mut dropped = Vec::new();
    let mut budget = Budget::default();
    for member in members {
        if let Err(error) = validate_key(&member.key) {
            dropped.push(error);
            continue;
        }
        let mut wire = format!("{}={}", member.key, encode_value(&member.value));
        for property in &member.properties {
            if validate_property(property).is_ok() {
                wire.push(';');
                wire.push_str(&property.to_wire());
            }
        }
        if let Err(error) = budget.take(&member.key, wire.len()) {
            dropped.push(error);
            continue;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&wire);
    }
    (out, dropped)
}

/// Reads opentelemetry's property string (`BaggageMetadata`, e.g. `a;b=c`) into properties,
/// skipping any that are not valid on the wire.
pub fn properties_from_metadata(metadata: &str) -> Vec<BaggageProperty> {
    metadata
        .split(';')
        .map(trim_ows)
        .filter(|p| !p.is_empty())
        .filter_map(|p| parse_property(p).ok())
        .collect()
}

/// Writes properties as opentelemetry's property string, without a leading `;`.
pub fn properties_to_metadata(properties: &[BaggageProperty]) -> String {
    properties
        .iter()
        .map(BaggageProperty::to_wire)
        .collect::<Vec<_>>()
        .join(";")
}

/// Percent-encodes a value: every byte outside baggage-octet, and `%` itself, becomes `%XX`.
pub fn encode_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        if is_baggage_octet(byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// Percent-decodes a value made of baggage-octets. Returns `None` for a `%` without two hex
/// digits after it; decoded bytes that are not UTF-8 become U+FFFD.
pub fn decode_value(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let high = hex_value(*bytes.get(i + 1)?)?;
            let low = hex_value(*bytes.get(i + 2)?)?;
            out.push((high << 4) | low);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Counts members and bytes against the limits as members are accepted.
#[derive(Default)]
struct Budget {
    members: usize,
    bytes: usize,
}

impl Budget {
    /// Accounts for one member of `len` bytes, plus its `,` separator when it is not the first.
    fn take(&mut self, key: &str, len: usize) -> Result<(), BaggageError> {
        if self.members == MAX_MEMBERS {
            return Err(BaggageError::TooManyMembers { key: excerpt(key) });
        }
        let needed = len + usize::from(self.members > 0);
        if self.bytes + needed > MAX_BYTES {
            return Err(BaggageError::TooLarge { key: excerpt(key) });
        }
        self.members += 1;
        self.bytes += needed;
        Ok(())
    }
}

fn parse_member(member: &str) -> Result<BaggageMember, BaggageError> {
    let mut parts = member.split(';');
    let pair = parts.next().unwrap_or_default();
    let Some((key, value)) = pair.split_once('=') else {
        return Err(BaggageError::MissingEquals {
            member: excerpt(member),
        });
    };
    let (key, value) = (trim_ows(key), trim_ows(value));
    if key.is_empty() {
        return Err(BaggageError::EmptyKey {
            member: excerpt(member),
        });
    }
    validate_key(key)?;
    if let Some(found) = value.chars().find(|c| !is_baggage_char(*c)) {
        return Err(BaggageError::InvalidValueChar {
            key: excerpt(key),
            found,
        });
    }
    let decoded = decode_value(value)
        .ok_or_else(|| BaggageError::BadPercentEncoding { key: excerpt(key) })?;
    let properties = parts
        .map(trim_ows)
        .map(|property| {
            parse_property(property).map_err(|()| BaggageError::InvalidProperty {
                key: excerpt(key),
                property: excerpt(property),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BaggageMember {
        key: key.to_owned(),
        value: decoded,
        properties,
    })
}

fn parse_property(property: &str) -> Result<BaggageProperty, ()> {
    let parsed = match property.split_once('=') {
        Some((key, value)) => BaggageProperty {
            key: trim_ows(key).to_owned(),
            value: Some(trim_ows(value).to_owned()),
        },
        None => BaggageProperty {
            key: property.to_owned(),
            value: None,
        },
    };
    validate_property(&parsed)?;
    Ok(parsed)
}

fn validate_property(property: &BaggageProperty) -> Result<(), ()> {
    let key_ok = !property.key.is_empty() && property.key.bytes().all(is_tchar);
    let value_ok = property
        .value
        .as_deref()
        .is_none_or(|value| value.chars().all(is_baggage_char) && decode_value(value).is_some());
    if key_ok && value_ok { Ok(()) } else { Err(()) }
}

fn validate_key(key: &str) -> Result<(), BaggageError> {
    if key.is_empty() {
        return Err(BaggageError::EmptyKey {
            member: String::new(),
        });
    }
    match key.chars().find(|c| !u8::try_from(*c).is_ok_and(is_tchar)) {
        Some(found) => Err(BaggageError::InvalidKey {
            key: excerpt(key),
            found,
        }),
        None => Ok(()),
    }
}

/// RFC 7230 `tchar`.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// W3C Baggage `baggage-octet`: printable ASCII except space, `"`, `,`, `;` and `\`.
fn is_baggage_octet(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

fn is_baggage_char(c: char) -> bool {
    u8::try_from(c).is_ok_and(is_baggage_octet)
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

#[cfg(test)]
mod tests;
