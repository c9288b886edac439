//! Runtime values of an OTTL evaluation and the language's comparison rules.
//!
//! Values borrow from the span they were read from wherever they can, so that the common
//! condition (`attributes["http.route"] == "/checkout"`) compares two borrowed strings and
//! allocates nothing.

use std::cmp::Ordering;

use tracelab_trace::{AttrValue, Attribute};

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    OwnedStr(String),
    Bytes(&'a [u8]),
    /// An attribute array read from a span.
    AttrList(&'a [AttrValue]),
    /// A list built by the condition (`["a", "b"]`, `Split`).
    List(Vec<Value<'a>>),
    /// An attribute map (`attributes`, `resource.attributes`).
    Attrs(&'a [Attribute]),
    /// A map built by the condition (`{"a": 1}`).
    Map(Vec<(String, Value<'a>)>),
}

/// The comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// How the operator is written.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

impl<'a> Value<'a> {
    /// An attribute value as an OTTL value (maps are stored flattened to their JSON text by
    /// the span model, so they read as strings).
    pub fn from_attr(v: &'a AttrValue) -> Value<'a> {
        match v {
            AttrValue::Str(s) => Value::Str(s),
            AttrValue::Bool(b) => Value::Bool(*b),
            AttrValue::Int(i) => Value::Int(*i),
            AttrValue::Double(d) => Value::Float(*d),
            AttrValue::Array(items) => Value::AttrList(items),
            AttrValue::Bytes(b) => Value::Bytes(b),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::OwnedStr(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The type's name in error messages, as OTTL users know the types.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) | Value::OwnedStr(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::AttrList(_) | Value::List(_) => "slice",
            Value::Attrs(_) | Value::Map(_) => "map",
        }
    }

    /// The number of elements of a list, entries of a map or bytes of a string.
    pub fn len(&self) -> Option<usize> {
        match self {
            Value::Str(s) => Some(s.len()),
            Value::OwnedStr(s) => Some(s.len()),
            Value::AttrList(l) => Some(l.len()),
            Value::List(l) => Some(l.len()),
            Value::Attrs(m) => Some(m.len()),
            Value::Map(m) => Some(m.len()),
            _ => None,
        }
    }

    /// The element at `index` of a list.
    pub fn index(&self, index: i64) -> Result<Value<'a>, String> {
        let len = match self {
            Value::AttrList(l) => l.len(),
            Value::List(l) => l.len(),
            other => {
                return Err(format!(
                    "type {} does not support int indexing",
                    other.type_name()
                ));
            }
        };
        let i = usize::try_from(index)
            .ok()
            .filter(|i| *i < len)
            .ok_or_else(|| format!("index {index} out of bounds (length {len})"))?;
        Ok(match self {
            Value::AttrList(l) => Value::from_attr(&l[i]),
            Value::List(l) => l[i].clone(),
            _ => Value::Nil,
        })
    }

    /// The value at `key` of a map; `nil` when the key is absent.
    pub fn get(&self, key: &str) -> Result<Value<'a>, String> {
        match self {
            Value::Attrs(attrs) => Ok(lookup(attrs, key)),
            Value::Map(m) => Ok(m
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Nil)),
            other => Err(format!(
                "type {} does not support string indexing",
                other.type_name()
            )),
        }
    }
}

/// The first attribute with this key, as pdata's `Get` returns it; `nil` when there is none.
#[inline]
pub(crate) fn lookup<'a>(attrs: &'a [Attribute], key: &str) -> Value<'a> {
    attrs
        .iter()
        .find(|a| same(a.key.as_bytes(), key.as_bytes()))
        .map(|a| Value::from_attr(&a.value))
        .unwrap_or(Value::Nil)
}

/// Byte equality written out so it inlines, eight bytes at a time: keys and values in
/// conditions are short, and a call into `memcmp` per comparison is most of the cost of
/// evaluating one.
#[inline]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    for (p, q) in (&mut x).zip(&mut y) {
        let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]));
        if word(p) != word(q) {
            return false;
        }
    }
    x.remainder().iter().zip(y.remainder()).all(|(p, q)| p == q)
}

/// Compares two values by OTTL's rules: numbers numerically (an int and a float as floats),
/// strings and byte slices by their bytes, booleans with false below true, `nil` equal only to
/// `nil`; values of different types are "not equal" (so `!=` is true and every other
/// operator false), and lists and maps support only `==` and `!=`.
pub(crate) fn compare(left: &Value<'_>, op: CmpOp, right: &Value<'_>) -> bool {
    // The common case first: a string attribute tested for (in)equality.
    if let (Value::Str(a), Value::Str(b), CmpOp::Eq | CmpOp::Ne) = (left, right, op) {
        return same(a.as_bytes(), b.as_bytes()) == (op == CmpOp::Eq);
    }
    let ordering = match (left, right) {
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::Int(a), Value::Float(b)) => (*a as f64).partial_cmp(b),
        (Value::Float(a), Value::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Nil, Value::Nil) => {
            return matches!(op, CmpOp::Eq);
        }
        (a, b) => match (a.as_str(), b.as_str(), a.as_bytes(), b.as_bytes()) {
            (Some(x), Some(y), _, _) => Some(x.as_bytes().cmp(y.as_bytes())),
            (_, _, Some(x), Some(y)) => Some(x.cmp(y)),
            _ => {
                let same_kind = a.type_name() == b.type_name() && a.type_name() != "nil";
                let equal = same_kind && structurally_equal(a, b);
                return match op {
                    CmpOp::Eq => equal,
                    CmpOp::Ne => !equal,
                    _ => false,
                };
            }
        },
    };
    match ordering {
        // NaN compares unequal to everything, as in Go.
        None => matches!(op, CmpOp::Ne),
        Some(o) => match op {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::Ne => o != Ordering::Equal,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Le => o != Ordering::Greater,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Ge => o != Ordering::Less,
        },
    }
}

/// Equality of lists and maps, element by element.
fn structurally_equal(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Attrs(x), Value::Attrs(y)) => x == y,
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .any(|(k2, v2)| k == k2 && compare(v, CmpOp::Eq, v2))
                })
        }
        (Value::AttrList(_) | Value::List(_), Value::AttrList(_) | Value::List(_)) => {
            let n = a.len().unwrap_or(0);
            n == b.len().unwrap_or(0)
                && (0..n as i64).all(|i| {
                    let l = a.index(i).unwrap_or(Value::Nil);
                    let r = b.index(i).unwrap_or(Value::Nil);
                    compare(&l, CmpOp::Eq, &r)
                })
        }
        _ => false,
    }
}
