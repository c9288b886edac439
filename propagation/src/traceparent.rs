//! The `traceparent` header: parsing every rule of W3C Trace Context Level 2, and rendering.
//!
//! A valid header looks like `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03`:
//! version, trace-id, parent-id and trace-flags, all lowercase hex, separated by `-`.
//!
//! [`parse`] works on bytes, never on `str` slices, so that input with multi-byte characters
//! cannot make it slice inside a character (it will be fuzzed).

use thiserror::Error;

use crate::wire::trim_ows;

/// Length of a version-00 header, and the length of the four fields every version starts with.
const HEADER_LEN: usize = 55;

/// The trace-flags bit saying the caller recorded this trace (Level 1).
pub const FLAG_SAMPLED: u8 = 0x01;
/// The trace-flags bit saying the right-most 7 bytes of the trace-id are random (Level 2).
pub const FLAG_RANDOM: u8 = 0x02;
/// The flags this implementation knows. Level 2 forbids passing on bits it does not define.
pub const KNOWN_FLAGS: u8 = FLAG_SAMPLED | FLAG_RANDOM;

/// One parsed `traceparent` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The version the sender used. Only `00` is defined; higher versions are read by their
    /// first four fields, `ff` is never valid.
    pub version: u8,
    /// The trace-id, never all zero.
    pub trace_id: [u8; 16],
    /// The span-id of the caller's span (called parent-id on the wire), never all zero.
    pub parent_id: [u8; 8],
    /// The trace-flags byte exactly as received, unknown bits included.
    pub flags: u8,
}

impl TraceParent {
    /// Renders the header. The version is always `00`, whatever version was parsed, because
    /// `00` is the only version this implementation can vouch for. The flags are written as
    /// they are: callers that forward a received header mask them with [`KNOWN_FLAGS`] first.
    pub fn to_header(&self) -> String {
        let mut out = String::with_capacity(HEADER_LEN);
        out.push_str("00-");
        push_hex(&mut out, &self.trace_id);
        out.push('-');
        push_hex(&mut out, &self.parent_id);
        out.push('-');
        push_hex(&mut out, &[self.flags]);
        out
    }

    /// Whether the sampled flag (`0x01`) is set.
    pub fn is_sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// Whether the Level 2 random flag (`0x02`) is set.
    pub fn is_random(&self) -> bool {
        self.flags & FLAG_RANDOM != 0
    }
}

/// Why a `traceparent` header was rejected. The messages are shown to students, so each one
/// names the field and the rule.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TraceParentError {
    /// No header was sent.
    #[error("no traceparent header was sent")]
    Missing,
    /// The header was sent more than once.
    #[error("{count} traceparent headers were sent; exactly one is allowed, so all are ignored")]
    Repeated {
        /// How many headers were sent.
        count: usize,
    },
    /// The value holds a byte that is not ASCII, so no field can be trusted.
    #[error("traceparent contains a non-ASCII character at position {position}")]
    NonAscii {
        /// Byte offset of the first non-ASCII byte, after trimming spaces and tabs.
        position: usize,
    },
    /// Shorter than the four fields every version has.
    #[error(
        "traceparent is {len} characters long; at least 55 are needed \
         (version-traceid-parentid-flags, e.g. 00-<32 hex>-<16 hex>-<2 hex>)"
    )]
    TooShort {
        /// Length after trimming spaces and tabs.
        len: usize,
    },
    /// The version is not two lowercase hex digits.
    #[error("the version {found:?} is not two lowercase hex digits")]
    InvalidVersion {
        /// The first two characters.
        found: String,
    },
    /// Version `ff` is reserved as invalid.
    #[error("version ff is forbidden by the specification")]
    ForbiddenVersion,
    /// A `-` separator is missing.
    #[error("expected '-' after the {after} at position {position}, found {found:?}")]
    MissingSeparator {
        /// The field the separator should follow.
        after: &'static str,
        /// Byte offset where the `-` should be.
        position: usize,
        /// The character found there.
        found: char,
    },
    /// The trace-id is not 32 lowercase hex digits.
    #[error("the trace-id {found:?} is not 32 lowercase hex digits")]
    InvalidTraceId {
        /// The 32 characters where the trace-id should be.
        found: String,
    },
    /// The trace-id is all zeros.
    #[error("the trace-id is all zeros, which the specification reserves as invalid")]
    ZeroTraceId,
    /// The parent-id is not 16 lowercase hex digits.
    #[error("the parent-id {found:?} is not 16 lowercase hex digits")]
    InvalidParentId {
        /// The 16 characters where the parent-id should be.
        found: String,
    },
    /// The parent-id is all zeros.
    #[error("the parent-id is all zeros, which the specification reserves as invalid")]
    ZeroParentId,
    /// The trace-flags are not 2 lowercase hex digits.
    #[error("the trace-flags {found:?} are not 2 lowercase hex digits")]
    InvalidFlags {
        /// The 2 characters where the flags should be.
        found: String,
    },
    /// A version-00 header must end right after the flags.
    #[error("a version 00 traceparent is exactly 55 characters long, this one is {len}")]
    Version00Length {
        /// Length after trimming spaces and tabs.
        len: usize,
    },
    /// A higher version may carry more fields, but only after a `-`.
    #[error(
        "a version {version:02x} traceparent may only continue after the flags with '-', \
         found {found:?}"
    )]
    InvalidExtraData {
        /// The version that was parsed.
        version: u8,
        /// The character right after the flags.
        found: char,
    },
}

/// Parses every value of the `traceparent` header that was received, in order.
///
/// Exactly one value must be present: a repeated header is as invalid as a malformed one,
/// because there is no way to tell which of them the caller meant.
pub fn parse(values: &[&str]) -> Result<TraceParent, TraceParentError> {
    let value = match values {
        [] => return Err(TraceParentError::Missing),
        [one] => *one,
        many => return Err(TraceParentError::Repeated { count: many.len() }),
    };
    parse_one(trim_ows(value))
}

fn parse_one(value: &str) -> Result<TraceParent, TraceParentError> {
    let bytes = value.as_bytes();
    if let Some(position) = bytes.iter().position(|b| !b.is_ascii()) {
        return Err(TraceParentError::NonAscii { position });
    }
    if bytes.len() < HEADER_LEN {
        return Err(TraceParentError::TooShort { len: bytes.len() });
    }

    let version =
        decode_hex::<1>(&bytes[0..2]).ok_or_else(|| TraceParentError::InvalidVersion {
            found: lossy(&bytes[0..2]),
        })?[0];
    if version == 0xff {
        return Err(TraceParentError::ForbiddenVersion);
    }

    // Separators first: a field of the wrong width shows up as a misplaced '-', which is the
    // clearest thing to tell a student.
    expect_separator(bytes, 2, "version")?;
    expect_separator(bytes, 35, "trace-id")?;
    expect_separator(bytes, 52, "parent-id")?;

    let trace_id =
        decode_hex::<16>(&bytes[3..35]).ok_or_else(|| TraceParentError::InvalidTraceId {
            found: lossy(&bytes[3..35]),
        })?;
    if trace_id == [0; 16] {
        return Err(TraceParentError::ZeroTraceId);
    }

    let parent_id =
        decode_hex::<8>(&bytes[36..52]).ok_or_else(|| TraceParentError::InvalidParentId {
            found: lossy(&bytes[36..52]),
        })?;
    if parent_id == [0; 8] {
        return Err(TraceParentError::ZeroParentId);
    }

    let flags = decode_hex::<1>(&bytes[53..55]).ok_or_else(|| TraceParentError::InvalidFlags {
        found: lossy(&bytes[53..55]),
    })?[0];

    if version == 0 {
        if bytes.len() != HEADER_LEN {
            return Err(TraceParentError::Version00Length { len: bytes.len() });
        }
    } else if let Some(&next) = bytes.get(HEADER_LEN)
        && next != b'-'
    {
        // A future version may append fields, and the specification promises they will start
        // with '-'. Anything else means the four fields we read were not what they seemed.
        return Err(TraceParentError::InvalidExtraData {
            version,
            found: char::from(next),
        });
    }

    Ok(TraceParent {
        version,
        trace_id,
        parent_id,
        flags,
    })
}

fn expect_separator(
    bytes: &[u8],
    position: usize,
    after: &'static str,
) -> Result<(), TraceParentError> {
    match bytes.get(position) {
        Some(b'-') => Ok(()),
        other => Err(TraceParentError::MissingSeparator {
            after,
            position,
            found: other.map_or(' ', |b| char::from(*b)),
        }),
    }
}

/// Decodes exactly `N * 2` lowercase hex digits. Uppercase is rejected on purpose: the
/// specification allows only lowercase, and accepting both would hide senders that break it.
pub(crate) fn decode_hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *slot = (lower_hex_value(pair[0])? << 4) | lower_hex_value(pair[1])?;
    }
    Some(out)
}

fn lower_hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests;
