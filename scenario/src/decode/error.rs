//! The decoder's error type and the wording of its messages.
//!
//! serde raises most problems where it cannot know where it is: a struct's visitor notices a
//! missing field, a number's visitor refuses a string. Such a problem travels up as
//! [`DeError::Pending`] until the deserializer that handed out the node catches it and turns
//! it into [`DeError::Located`], with the node's field path, line and column and a message
//! worded from what that deserializer was asked for ("expected a number, found the string
//! `fast`").

use std::fmt;

use serde::de::{self, Expected, Unexpected};

use crate::diagnostic::did_you_mean;
use crate::node::Pos;

/// The separator between a message and its help in a custom error (see [`with_help`]).
const HELP: &str = "\n  help: ";

/// A message with a hint on how to fix it, for `serde::de::Error::custom`. The decoder splits
/// them into a diagnostic's message and help; other formats (the admin API's JSON) show both.
pub(crate) fn with_help(message: impl fmt::Display, help: impl fmt::Display) -> String {
    format!("{message}{HELP}{help}")
}

/// A problem as serde reports it, before it has a place.
#[derive(Debug)]
pub(crate) enum Problem {
    /// A message of the type's own (durations, shorthands).
    Custom {
        message: String,
        help: Option<String>,
    },
    /// The node is of the wrong type or out of range; `expected` is the visitor's wording.
    Mismatch { expected: String },
    /// A name that names no variant of the enum.
    UnknownVariant {
        variant: String,
        expected: &'static [&'static str],
    },
    /// A key that names no field of the struct.
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    /// A required field is not there.
    MissingField(&'static str),
    /// A field given twice.
    DuplicateField(&'static str),
}

/// A problem at a place in the file.
#[derive(Debug)]
pub(crate) struct Located {
    /// The field path in the file.
    pub(crate) path: String,
    /// Where the node (or for an unknown name, the key) is.
    pub(crate) pos: Pos,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
    /// True when the problem only follows from one already reported (a required field whose
    /// value was broken is now missing): the node is broken, but nothing new is said.
    pub(crate) silent: bool,
}

/// The error of the located deserializer.
#[derive(Debug)]
pub(crate) enum DeError {
    Pending(Problem),
    Located(Located),
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeError::Located(located) => write!(f, "{}: {}", located.path, located.message),
            DeError::Pending(problem) => write!(f, "{problem:?}"),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        let message = message.to_string();
        let problem = match message.split_once(HELP) {
            Some((message, help)) => Problem::Custom {
                message: message.to_owned(),
                help: Some(help.to_owned()),
            },
            None => Problem::Custom {
                message,
                help: None,
            },
        };
        DeError::Pending(problem)
    }

    fn invalid_type(_: Unexpected<'_>, expected: &dyn Expected) -> Self {
        DeError::Pending(Problem::Mismatch {
            expected: expected.to_string(),
        })
    }

    fn invalid_value(_: Unexpected<'_>, expected: &dyn Expected) -> Self {
        DeError::Pending(Problem::Mismatch {
            expected: expected.to_string(),
        })
    }

    fn invalid_length(_: usize, expected: &dyn Expected) -> Self {
        DeError::Pending(Problem::Mismatch {
            expected: expected.to_string(),
        })
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::Pending(Problem::UnknownVariant {
            variant: variant.to_owned(),
            expected,
        })
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError::Pending(Problem::UnknownField {
            field: field.to_owned(),
            expected,
        })
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::Pending(Problem::MissingField(field))
    }

    fn duplicate_field(field: &'static str) -> Self {
        DeError::Pending(Problem::DuplicateField(field))
    }
}

/// What a deserializer was asked for, which words the message of a mismatch.
#[derive(Debug, Clone)]
pub(crate) enum Hint {
    /// Whatever the node is (`deserialize_any`); the visitor's own wording is used.
    Any,
    /// A scalar, worded like "a number".
    Scalar(&'static str),
    /// Text.
    Text,
    /// A whole number up to `max`.
    Whole { max: u128 },
    /// A list.
    List,
    /// A mapping from names to values.
    Mapping,
    /// A struct, described as `what` ("a route").
    Struct { what: String },
    /// An enum, named `noun` ("latency model"), with its variants.
    Enum {
        noun: String,
        variants: &'static [&'static str],
    },
}

impl Hint {
    /// "expected ..." for a node that is not what was asked for; `visitor` is what the
    /// visitor said it expected.
    pub(crate) fn expected(&self, visitor: &str) -> String {
        match self {
            Hint::Any => visitor.to_owned(),
            Hint::Scalar(what) => (*what).to_owned(),
            Hint::Text => "a string".to_owned(),
            Hint::Whole { max } => format!("a whole number from 0 to {max}"),
            Hint::List => "a list".to_owned(),
            Hint::Mapping => "a mapping".to_owned(),
            Hint::Struct { what } => format!("{what} (a mapping)"),
            Hint::Enum { noun, .. } => with_article(noun),
        }
    }

    /// How to fix a mismatch, given what was found.
    pub(crate) fn help(&self, found_scalar: bool) -> Option<String> {
        match self {
            Hint::Text if found_scalar => Some("put it in quotes to make it text".to_owned()),
            Hint::Enum { noun, variants } => Some(format!(
                "write one of the {noun}s: {}, as `{{<name>: <parameters>}}` or the bare name of one without parameters",
                variants.join(", ")
            )),
            _ => None,
        }
    }

    /// The noun for an unknown name: "latency model", or "variant".
    pub(crate) fn noun(&self) -> &str {
        match self {
            Hint::Enum { noun, .. } => noun,
            _ => "variant",
        }
    }

    /// The description of a struct: "a route", or "a mapping".
    pub(crate) fn what(&self) -> &str {
        match self {
            Hint::Struct { what } => what,
            _ => "a mapping",
        }
    }
}

/// The unknown-name help: the closest name when it is close, and the choices.
pub(crate) fn unknown_name_help(name: &str, expected: &[&str]) -> String {
    did_you_mean(name, "expected one of", expected)
}

/// How a struct is named in messages, from its Rust type name: `ErrorModel` is "an error
/// model". The few that read better otherwise are listed.
pub(crate) fn what(type_name: &str) -> String {
    match type_name {
        "Load" => "the load".to_owned(),
        "RandomIncidents" => "random incidents".to_owned(),
        "Entry" => "a load entry".to_owned(),
        "Parallel" | "Work" | "Db" | "Cache" | "Publish" => {
            with_article(&format!("{} step", words(type_name)))
        }
        _ => with_article(&words(type_name)),
    }
}

/// `LatencyModel` as "latency model".
pub(crate) fn words(type_name: &str) -> String {
    let mut out = String::with_capacity(type_name.len() + 4);
    for (index, c) in type_name.chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// "a route", "an error model", "a uniform latency model".
pub(crate) fn with_article(noun: &str) -> String {
    let vowel = noun.starts_with(['a', 'e', 'i', 'o'])
        || (noun.starts_with('u') && !noun.starts_with("uni") && !noun.starts_with("use"));
    format!("{} {noun}", if vowel { "an" } else { "a" })
}

/// A list of names as "`a`, `b` or `c`".
pub(crate) fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}
