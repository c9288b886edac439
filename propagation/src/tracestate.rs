//! The `tracestate` header: the Level 2 grammar, limits and rendering.
//!
//! A `tracestate` is an ordered list of `key=value` members, left-most most recent, such as
//! `congo=t61rcWkgMzE,rojo=00f067aa0ba902b7`. Several headers are one list, as if joined with
//! `,`. Any invalid member, or more than 32 members, invalidates the whole list: the
//! specification does not let a participant guess which part of a broken list still holds.

use thiserror::Error;

use crate::wire::{excerpt, trim_ows};

/// The most members a list may hold.
pub const MAX_MEMBERS: usize = 32;
/// The longest key, in characters.
pub const MAX_KEY_LEN: usize = 256;
/// The longest value, in characters.
pub const MAX_VALUE_LEN: usize = 256;

/// A valid `tracestate`: members in order, keys unique.
///
/// A key that arrives twice is not an error (Level 2 relaxed that); the first (left-most)
/// entry is kept, because left-most is the most recently updated one by the specification's
/// own mutation rule, and the later duplicate is dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TraceStateList {
    members: Vec<(String, String)>,
}

impl TraceStateList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a list for sending from members that may come from anywhere (another library's
    /// trace state, a sampler): invalid members and repeated keys are dropped, and the list is
    /// cut at [`MAX_MEMBERS`], so the result can always be sent.
    pub fn from_members<K, V>(members: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut list = Self::new();
        for (key, value) in members {
            if list.members.len() == MAX_MEMBERS {
                break;
            }
            let (key, value) = (key.into(), value.into());
            if validate_key(&key).is_ok() && validate_value(&key, &value).is_ok() {
                list.push_unique(key, value);
            }
        }
        list
    }

    /// The members, left-most first.
    pub fn members(&self) -> &[(String, String)] {
        &self.members
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the list has no members (then no header is sent).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The header value: members in order, joined by `,` with no spaces.
    pub fn to_header(&self) -> String {
        let mut out = String::new();
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        }
        out
    }

    /// Appends a member unless its key is already present (first wins).
    fn push_unique(&mut self, key: String, value: String) {
        if self.get(&key).is_none() {
            self.members.push((key, value));
        }
    }
}

/// Why a `tracestate` was rejected as a whole. The messages are shown to students.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TraceStateError {
    /// More than [`MAX_MEMBERS`] members.
    #[error("tracestate has {count} members; at most 32 are allowed, so all are ignored")]
    TooManyMembers {
        /// Non-empty members counted over all headers.
        count: usize,
    },
    /// A member without `=`.
    #[error("tracestate member {member:?} has no '=' between key and value")]
    MissingEquals {
        /// The member, shortened if long.
        member: String,
    },
    /// A member with nothing before `=`.
    #[error("tracestate member {member:?} has an empty key")]
    EmptyKey {
        /// The member, shortened if long.
        member: String,
    },
    /// A key longer than [`MAX_KEY_LEN`].
    #[error("tracestate key {key:?} is {len} characters long; at most 256 are allowed")]
    KeyTooLong {
        /// The key, shortened.
        key: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A key that does not start with a lowercase letter or a digit.
    #[error("tracestate key {key:?} must start with a lowercase letter or a digit")]
    InvalidKeyStart {
        /// The key, shortened if long.
        key: String,
    },
    /// A key with a character outside `a-z 0-9 _ - * / @`.
    #[error(
        "tracestate key {key:?} contains {found:?}; keys may only hold lowercase letters, \
         digits and _ - * / @"
    )]
    InvalidKeyChar {
        /// The key, shortened if long.
        key: String,
        /// The first character that is not allowed.
        found: char,
    },
    /// A member with nothing after `=`.
    #[error("tracestate value of key {key:?} is empty; a value has 1 to 256 characters")]
    EmptyValue {
        /// The member's key, shortened if long.
        key: String,
    },
    /// A value longer than [`MAX_VALUE_LEN`].
    #[error("tracestate value of key {key:?} is {len} characters long; at most 256 are allowed")]
    ValueTooLong {
        /// The member's key, shortened if long.
        key: String,
        /// The value's length in bytes.
        len: usize,
    },
    /// A value with a character outside printable ASCII, or a `,` or `=`.
    #[error(
        "tracestate value of key {key:?} contains {found:?}; values may only hold printable \
         ASCII other than ',' and '='"
    )]
    InvalidValueChar {
        /// The member's key, shortened if long.
        key: String,
        /// The first character that is not allowed.
        found: char,
    },
    /// A value ending with a space.
    #[error("tracestate value of key {key:?} ends with a space, which is not allowed")]
    TrailingSpace {
        /// The member's key, shortened if long.
        key: String,
    },
}

/// Parses every value of the `tracestate` header that was received, in order, as one list.
///
/// Empty members and the spaces and tabs around members are skipped. An empty result is
/// valid (it means "no vendor state").
pub fn parse(values: &[&str]) -> Result<TraceStateList, TraceStateError> {
    let members: Vec<&str> = values
        .iter()
        .flat_map(|value| value.split(','))
        .map(trim_ows)
        .filter(|member| !member.is_empty())
        .collect();
    if members.len() > MAX_MEMBERS {
        return Err(TraceStateError::TooManyMembers {
            count: members.len(),
        });
    }

    let mut list = TraceStateList::new();
    for member in members {
        let Some((key, value)) = member.split_once('=') else {
            return Err(TraceStateError::MissingEquals {
                member: excerpt(member),
            });
        };
        if key.is_empty() {
            return Err(TraceStateError::EmptyKey {
                member: excerpt(member),
            });
        }
        validate_key(key)?;
        validate_value(key, value)?;
        list.push_unique(key.to_owned(), value.to_owned());
    }
    Ok(list)
}

/// Checks one key against the Level 2 grammar: 1 to 256 characters of `a-z 0-9 _ - * / @`,
/// starting with a lowercase letter or a digit.
///
/// Level 1 split keys into `tenant@system` with a short system part; Level 2 dropped that, so
/// `foo@`, `foo@@bar` and long parts after `@` are all valid keys.
pub fn validate_key(key: &str) -> Result<(), TraceStateError> {
    let bytes = key.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(TraceStateError::EmptyKey {
            member: String::new(),
        });
    };
    if bytes.len() > MAX_KEY_LEN {
        return Err(TraceStateError::KeyTooLong {
            key: excerpt(key),
            len: bytes.len(),
        });
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(TraceStateError::InvalidKeyStart { key: excerpt(key) });
    }
    if let Some(found) = key.chars().find(|c| !is_key_char(*c)) {
        return Err(TraceStateError::InvalidKeyChar {
            key: excerpt(key),
            found,
        });
    }
    Ok(())
}

/// Checks one value: 1 to 256 printable ASCII characters (0x20 to 0x7E) other than `,` and `=`,
/// not ending with a space. `key` only serves the error message.
///
/// A value received in a header never ends with a space, because the space is trimmed as
/// white space around the member; the rule still matters for values a program sets itself.
pub fn validate_value(key: &str, value: &str) -> Result<(), TraceStateError> {
    if value.is_empty() {
        return Err(TraceStateError::EmptyValue { key: excerpt(key) });
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(TraceStateError::ValueTooLong {
            key: excerpt(key),
            len: value.len(),
        });
    }
    if let Some(found) = value.chars().find(|c| !is_value_char(*c)) {
        return Err(TraceStateError::InvalidValueChar {
            key: excerpt(key),
            found,
        });
    }
    if value.ends_with(' ') {
        return Err(TraceStateError::TrailingSpace { key: excerpt(key) });
    }
    Ok(())
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '*' | '/' | '@')
}

fn is_value_char(c: char) -> bool {
    matches!(c, ' '..='~') && c != ',' && c != '='
}

#[cfg(test)]
mod tests;
