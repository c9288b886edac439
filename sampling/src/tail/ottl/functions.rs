//! The converters a sampling condition can call, checked when the condition is parsed and run
//! when it is evaluated. Semantics follow `pkg/ottl/ottlfuncs`; where tracelab's span model
//! differs (maps are stored as their JSON text), the difference is noted on the function.

use super::ast::{Expr, Key};
use super::eval::{Scope, eval};
use super::value::Value;
use super::{OttlContext, OttlParseError};

/// A converter, with whatever it could prepare at parse time.
#[derive(Debug, Clone)]
pub(crate) enum Func {
    /// The pattern is compiled once, when the condition is parsed.
    IsMatch(regex::Regex),
    IsString,
    IsInt,
    IsDouble,
    IsBool,
    IsMap,
    IsList,
    Len,
    Int,
    Double,
    Concat(String),
    Substring,
    ToLowerCase,
    ToUpperCase,
    HasPrefix,
    HasSuffix,
    Split(String),
    IsRootSpan,
}

/// An argument as written: optionally named (`target = ...`), with its column.
#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub name: Option<String>,
    pub value: Expr,
    pub column: usize,
}

/// Parameter names of each converter, in order.
const SIGNATURES: &[(&str, &[&str])] = &[
    ("IsMatch", &["target", "pattern"]),
    ("IsString", &["value"]),
    ("IsInt", &["value"]),
    ("IsDouble", &["value"]),
    ("IsBool", &["value"]),
    ("IsMap", &["value"]),
    ("IsList", &["value"]),
    ("Len", &["target"]),
    ("Int", &["value"]),
    ("Double", &["value"]),
    ("Concat", &["vals", "delimiter"]),
    ("Substring", &["target", "start", "length"]),
    ("ToLowerCase", &["target"]),
    ("ToUpperCase", &["target"]),
    ("HasPrefix", &["target", "prefix"]),
    ("HasSuffix", &["target", "suffix"]),
    ("Split", &["target", "delimiter"]),
    ("TraceID", &["bytes"]),
    ("SpanID", &["bytes"]),
    ("IsRootSpan", &[]),
];

/// Builds a converter call: arguments put in parameter order and counted, literal-only
/// parameters checked, the pattern of `IsMatch` compiled.
pub(crate) fn build(
    name: &str,
    args: Vec<Arg>,
    keys: Vec<Key>,
    ctx: OttlContext,
    column: usize,
) -> Result<Expr, OttlParseError> {
    let at = |column: usize, message: String| OttlParseError { column, message };
    let Some((_, params)) = SIGNATURES.iter().find(|(n, _)| *n == name) else {
        let known: Vec<&str> = SIGNATURES.iter().map(|(n, _)| *n).collect();
        return Err(at(
            column,
            format!(
                "unknown converter `{name}`; tracelab implements {}",
                known.join(", ")
            ),
        ));
    };
    let mut slots: Vec<Option<Arg>> = vec![None; params.len()];
    let mut seen_named = false;
    for (i, arg) in args.into_iter().enumerate() {
        let slot = match &arg.name {
            Some(n) => {
                seen_named = true;
                params.iter().position(|p| p == n).ok_or_else(|| {
                    at(
                        arg.column,
                        format!(
                            "{name} has no parameter `{n}`; it takes {}",
                            params.join(", ")
                        ),
                    )
                })?
            }
            None if seen_named => {
                return Err(at(
                    arg.column,
                    "positional arguments must come before named ones".to_string(),
                ));
            }
            None if i >= params.len() => {
                return Err(at(
                    arg.column,
                    format!(
                        "{name} takes {} argument{}",
                        params.len(),
                        if params.len() == 1 { "" } else { "s" }
                    ),
                ));
            }
            None => i,
        };
        if slots[slot].is_some() {
            return Err(at(
                arg.column,
                format!("{name}: `{}` is given twice", params[slot]),
            ));
        }
        slots[slot] = Some(arg);
    }
    let mut args = Vec::with_capacity(slots.len());
    for (slot, p) in slots.into_iter().zip(params.iter()) {
        args.push(slot.ok_or_else(|| at(column, format!("{name} needs its `{p}` argument")))?);
    }
    let literal_str = |a: &Arg, what: &str| match &a.value {
        Expr::Str(s) => Ok(s.clone()),
        _ => Err(at(
            a.column,
            format!("{name}: `{what}` must be a string literal"),
        )),
    };
    let no_keys = |keys: &[Key]| {
        if keys.is_empty() {
            Ok(())
        } else {
            Err(at(
                column,
                format!("the result of {name} cannot be indexed"),
            ))
        }
    };
    let func = match name {
        "IsMatch" => {
            let pattern = literal_str(&args[1], "pattern")?;
            let re = regex::Regex::new(&pattern).map_err(|e| {
                at(
                    args[1].column,
                    format!("IsMatch: invalid regular expression: {e}"),
                )
            })?;
            args.truncate(1);
            Func::IsMatch(re)
        }
        "IsString" => Func::IsString,
        "IsInt" => Func::IsInt,
        "IsDouble" => Func::IsDouble,
        "IsBool" => Func::IsBool,
        "IsMap" => Func::IsMap,
        "IsList" => Func::IsList,
        "Len" => Func::Len,
        "Int" => Func::Int,
        "Double" => Func::Double,
        "Concat" => {
            let delimiter = literal_str(&args[1], "delimiter")?;
            if !matches!(args[0].value, Expr::List(_)) {
                return Err(at(
                    args[0].column,
                    "Concat: `vals` must be a list, e.g. [name, \"-\", kind]".to_string(),
                ));
            }
            args.truncate(1);
            Func::Concat(delimiter)
        }
        "Substring" => Func::Substring,
        "ToLowerCase" => Func::ToLowerCase,
        "ToUpperCase" => Func::ToUpperCase,
        "HasPrefix" => Func::HasPrefix,
        "HasSuffix" => Func::HasSuffix,
        "Split" => {
            let delimiter = literal_str(&args[1], "delimiter")?;
            args.truncate(1);
            Func::Split(delimiter)
        }
        "TraceID" | "SpanID" => {
            no_keys(&keys)?;
            let want = if name == "TraceID" { 16 } else { 8 };
            return match &args[0].value {
                Expr::Bytes(b) if b.len() == want => Ok(Expr::Bytes(b.clone())),
                _ => Err(at(
                    args[0].column,
                    format!("{name} takes a byte literal of exactly {want} bytes (0x...)"),
                )),
            };
        }
        "IsRootSpan" => {
            if ctx != OttlContext::Span {
                return Err(at(
                    column,
                    "IsRootSpan is only available in `span` conditions".to_string(),
                ));
            }
            Func::IsRootSpan
        }
        other => return Err(at(column, format!("unknown converter `{other}`"))),
    };
    if !matches!(func, Func::Split(_)) {
        no_keys(&keys)?;
    }
    Ok(Expr::Call {
        func: Box::new(func),
        args: args.into_iter().map(|a| a.value).collect(),
        keys,
    })
}

/// Runs a converter on its (unevaluated) arguments.
pub(crate) fn call<'a>(
    func: &Func,
    args: &'a [Expr],
    scope: &Scope<'a>,
) -> Result<Value<'a>, String> {
    let arg = |i: usize| eval(&args[i], scope);
    Ok(match func {
        Func::IsMatch(re) => match arg(0)? {
            Value::Nil => Value::Bool(false),
            v => Value::Bool(re.is_match(&string_like(&v, Encoding::Base64))),
        },
        Func::IsString => Value::Bool(matches!(arg(0)?, Value::Str(_) | Value::OwnedStr(_))),
        Func::IsInt => Value::Bool(matches!(arg(0)?, Value::Int(_))),
        Func::IsDouble => Value::Bool(matches!(arg(0)?, Value::Float(_))),
        Func::IsBool => Value::Bool(matches!(arg(0)?, Value::Bool(_))),
        Func::IsMap => Value::Bool(matches!(arg(0)?, Value::Attrs(_) | Value::Map(_))),
        Func::IsList => Value::Bool(matches!(arg(0)?, Value::AttrList(_) | Value::List(_))),
        Func::Len => {
            let v = arg(0)?;
            let n = v.len().ok_or_else(|| {
                format!(
                    "Len: a {} has no length (it takes a string, a slice or a map)",
                    v.type_name()
                )
            })?;
            Value::Int(n as i64)
        }
        Func::Int => match arg(0)? {
            Value::Int(i) => Value::Int(i),
            Value::Float(f) => Value::Int(f.trunc() as i64),
            Value::Bool(b) => Value::Int(i64::from(b)),
            v => match v.as_str().and_then(|s| s.parse::<i64>().ok()) {
                Some(i) => Value::Int(i),
                None => Value::Nil,
            },
        },
        Func::Double => match arg(0)? {
            Value::Int(i) => Value::Float(i as f64),
            Value::Float(f) => Value::Float(f),
            Value::Bool(b) => Value::Float(if b { 1.0 } else { 0.0 }),
            v => match v.as_str().and_then(|s| s.parse::<f64>().ok()) {
                Some(f) => Value::Float(f),
                None => Value::Nil,
            },
        },
        Func::Concat(delimiter) => {
            let Expr::List(items) = &args[0] else {
                return Err("Concat: `vals` must be a list".to_string());
            };
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(delimiter);
                }
                match eval(item, scope)? {
                    // pdata's StringLikeGetter yields no string for nil, which Go prints so.
                    Value::Nil => out.push_str("<nil>"),
                    v => out.push_str(&string_like(&v, Encoding::Hex)),
                }
            }
            Value::OwnedStr(out)
        }
        Func::Substring => {
            let target = string_arg(arg(0)?, "Substring")?;
            let start = int_arg(arg(1)?, "Substring", "start")?;
            let length = int_arg(arg(2)?, "Substring", "length")?;
            let bytes = target.as_bytes();
            if start < 0 || length <= 0 || (start + length) as usize > bytes.len() {
                return Err(format!(
                    "Substring: start {start} and length {length} do not fit a string of {} bytes",
                    bytes.len()
                ));
            }
            let (s, e) = (start as usize, (start + length) as usize);
            Value::OwnedStr(String::from_utf8_lossy(&bytes[s..e]).into_owned())
        }
        Func::ToLowerCase => Value::OwnedStr(string_arg(arg(0)?, "ToLowerCase")?.to_lowercase()),
        Func::ToUpperCase => Value::OwnedStr(string_arg(arg(0)?, "ToUpperCase")?.to_uppercase()),
        Func::HasPrefix | Func::HasSuffix => {
            let which = if matches!(func, Func::HasPrefix) {
                "HasPrefix"
            } else {
                "HasSuffix"
            };
            let target = string_arg(arg(0)?, which)?;
            let affix = string_arg(arg(1)?, which)?;
            Value::Bool(if matches!(func, Func::HasPrefix) {
                target.starts_with(affix.as_str())
            } else {
                target.ends_with(affix.as_str())
            })
        }
        Func::Split(delimiter) => {
            let target = string_arg(arg(0)?, "Split")?;
            Value::List(
                target
                    .split(delimiter.as_str())
                    .map(|s| Value::OwnedStr(s.to_string()))
                    .collect(),
            )
        }
        Func::IsRootSpan => Value::Bool(scope.span.parent_span_id.is_none()),
    })
}

/// A `StringGetter` argument: a string, or an error naming what it was instead.
fn string_arg(v: Value<'_>, func: &str) -> Result<String, String> {
    match v.as_str() {
        Some(s) => Ok(s.to_string()),
        None => Err(format!("{func}: expected string but got {}", v.type_name())),
    }
}

fn int_arg(v: Value<'_>, func: &str, what: &str) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(i),
        other => Err(format!(
            "{func}: `{what}` must be an int64, got {}",
            other.type_name()
        )),
    }
}

/// How a byte slice reads as a string.
#[derive(Clone, Copy)]
enum Encoding {
    Hex,
    Base64,
}

/// A value as a string, as pdata's string-like getters convert it.
fn string_like(v: &Value<'_>, bytes: Encoding) -> String {
    match v {
        Value::Str(s) => (*s).to_string(),
        Value::OwnedStr(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bytes(_) => {
            let b = v.as_bytes().unwrap_or_default();
            match bytes {
                Encoding::Hex => b.iter().map(|x| format!("{x:02x}")).collect(),
                Encoding::Base64 => base64(b),
            }
        }
        Value::Nil => String::new(),
        other => json(other),
    }
}

/// JSON text of a list or map value.
fn json(v: &Value<'_>) -> String {
    match v {
        Value::Nil => "null".to_string(),
        Value::Str(_) | Value::OwnedStr(_) => {
            serde_json::to_string(v.as_str().unwrap_or_default()).unwrap_or_default()
        }
        Value::Bool(_) | Value::Int(_) | Value::Float(_) => string_like(v, Encoding::Base64),
        Value::Bytes(_) => {
            serde_json::to_string(&string_like(v, Encoding::Base64)).unwrap_or_default()
        }
        Value::AttrList(_) | Value::List(_) => {
            let n = v.len().unwrap_or(0) as i64;
            let items: Vec<String> = (0..n)
                .map(|i| json(&v.index(i).unwrap_or(Value::Nil)))
                .collect();
            format!("[{}]", items.join(","))
        }
        Value::Attrs(attrs) => {
            let items: Vec<String> = attrs
                .iter()
                .map(|a| {
                    format!(
                        "{}:{}",
                        serde_json::to_string(&a.key).unwrap_or_default(),
                        json(&Value::from_attr(&a.value))
                    )
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Value::Map(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, x)| {
                    format!(
                        "{}:{}",
                        serde_json::to_string(k).unwrap_or_default(),
                        json(x)
                    )
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

/// Standard base64 with padding, as Go's `base64.StdEncoding`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
