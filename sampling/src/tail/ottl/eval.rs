//! Evaluation of parsed conditions against one span (and one of its events).

use tracelab_trace::{AttrValue, Attribute, Event, Span, SpanKind, StatusCode};

use super::ast::{BoolExpr, Expr, Field, Key, MathOp, Path};
use super::functions::call;
use super::value::{Value, compare, lookup, same};

/// What a condition is evaluated on: a span, and for `spanevent` conditions one of its events.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub span: &'a Span,
    pub event: Option<&'a tracelab_trace::Event>,
}

const NO_PARENT: [u8; 8] = [0; 8];

/// Evaluates a boolean expression, left to right with short-circuits, as OTTL does: an error
/// in a part that is evaluated is the condition's error.
pub(crate) fn eval_bool(expr: &BoolExpr, scope: &Scope<'_>) -> Result<bool, String> {
    match expr {
        BoolExpr::Or(terms) => {
            for t in terms {
                if eval_bool(t, scope)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        BoolExpr::And(terms) => {
            for t in terms {
                if !eval_bool(t, scope)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        BoolExpr::Not(inner) => Ok(!eval_bool(inner, scope)?),
        BoolExpr::Const(b) => Ok(*b),
        BoolExpr::Cmp(left, op, right) => {
            let l = eval(left, scope)?;
            let r = eval(right, scope)?;
            Ok(compare(&l, *op, &r))
        }
        BoolExpr::Value(e) => match eval(e, scope)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!("expected bool but got {}", other.type_name())),
        },
        BoolExpr::AttrIsStr {
            field,
            key,
            value,
            equal,
        } => {
            let is = attribute_str(field_map(*field, scope)?, key)
                .is_some_and(|s| same(s.as_bytes(), value.as_bytes()));
            Ok(is == *equal)
        }
        BoolExpr::AttrInStrs { field, key, values } => {
            Ok(attribute_str(field_map(*field, scope)?, key)
                .is_some_and(|s| values.iter().any(|v| same(s.as_bytes(), v.as_bytes()))))
        }
    }
}

/// The attribute map a field names.
#[inline]
fn field_map<'a>(field: Field, scope: &Scope<'a>) -> Result<&'a [Attribute], String> {
    Ok(match field {
        Field::Attributes => &scope.span.attributes,
        Field::ResourceAttributes => &scope.span.resource,
        _ => &event(scope)?.attributes,
    })
}

/// The first attribute of this key, if it is a string.
#[inline]
fn attribute_str<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| same(a.key.as_bytes(), key.as_bytes()))
        .and_then(|a| match &a.value {
            AttrValue::Str(s) => Some(s.as_str()),
            _ => None,
        })
}

/// Evaluates a value expression.
pub(crate) fn eval<'a>(expr: &'a Expr, scope: &Scope<'a>) -> Result<Value<'a>, String> {
    match expr {
        Expr::Nil => Ok(Value::Nil),
        Expr::Bool(b) => Ok(Value::Bool(*b)),
        Expr::Int(i) => Ok(Value::Int(*i)),
        Expr::Float(f) => Ok(Value::Float(*f)),
        Expr::Str(s) => Ok(Value::Str(s)),
        Expr::Bytes(b) => Ok(Value::Bytes(b)),
        Expr::Path(p) => path(p, scope),
        Expr::Call { func, args, keys } => {
            let v = call(func, args, scope)?;
            index(v, keys)
        }
        Expr::List(items) => Ok(Value::List(
            items
                .iter()
                .map(|i| eval(i, scope))
                .collect::<Result<_, _>>()?,
        )),
        Expr::Map(entries) => Ok(Value::Map(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), eval(v, scope)?)))
                .collect::<Result<_, String>>()?,
        )),
        Expr::Math(op, l, r) => math(*op, eval(l, scope)?, eval(r, scope)?),
    }
}

fn event<'a>(scope: &Scope<'a>) -> Result<&'a Event, String> {
    scope
        .event
        .ok_or_else(|| "a span event path was evaluated on a span".to_string())
}

fn path<'a>(p: &'a Path, scope: &Scope<'a>) -> Result<Value<'a>, String> {
    let span = scope.span;
    let hex = |b: &[u8]| -> String { b.iter().map(|x| format!("{x:02x}")).collect() };
    let base = match p.field {
        Field::Name => Value::Str(&span.name),
        Field::Kind => Value::Int(kind_code(span.kind)),
        Field::KindString => Value::Str(kind_name(span.kind)),
        Field::StatusCode => Value::Int(match span.status.code {
            StatusCode::Unset => 0,
            StatusCode::Ok => 1,
            StatusCode::Error => 2,
        }),
        Field::StatusMessage => Value::Str(&span.status.message),
        Field::Attributes => {
            return attributes(&span.attributes, &p.keys);
        }
        Field::ResourceAttributes => return attributes(&span.resource, &p.keys),
        Field::ScopeName => Value::Str(&span.scope_name),
        Field::TraceId => Value::Bytes(&span.trace_id.0),
        Field::TraceIdString => Value::OwnedStr(hex(&span.trace_id.0)),
        Field::SpanId => Value::Bytes(&span.span_id.0),
        Field::SpanIdString => Value::OwnedStr(hex(&span.span_id.0)),
        Field::ParentSpanId => Value::Bytes(match &span.parent_span_id {
            Some(id) => &id.0,
            None => &NO_PARENT,
        }),
        // pdata prints an empty span id as the empty string.
        Field::ParentSpanIdString => {
            Value::OwnedStr(span.parent_span_id.map(|id| hex(&id.0)).unwrap_or_default())
        }
        Field::TraceState => {
            return Ok(match p.keys.first() {
                None => Value::Str(&span.trace_state),
                Some(Key::Str(key)) => span
                    .trace_state
                    .split(',')
                    .filter_map(|m| m.trim().split_once('='))
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| Value::Str(v))
                    .unwrap_or(Value::Nil),
                Some(Key::Int(_)) => return Err("trace_state takes a string key".into()),
            });
        }
        Field::StartTime => Value::Int(span.start_unix_nano as i64),
        Field::EndTime => Value::Int(span.end_unix_nano as i64),
        Field::EventName => Value::Str(&event(scope)?.name),
        Field::EventAttributes => return attributes(&event(scope)?.attributes, &p.keys),
        Field::EventTime => Value::Int(event(scope)?.time_unix_nano as i64),
    };
    Ok(base)
}

/// An attribute map read through its keys: the first key names an attribute (`nil` when
/// absent), the others index into its value.
#[inline]
fn attributes<'a>(attrs: &'a [Attribute], keys: &'a [Key]) -> Result<Value<'a>, String> {
    match keys.split_first() {
        None => Ok(Value::Attrs(attrs)),
        Some((Key::Str(k), rest)) => {
            let v = lookup(attrs, k);
            if rest.is_empty() {
                Ok(v)
            } else {
                index(v, rest)
            }
        }
        Some((Key::Int(_), _)) => Err("attributes are indexed by a string key".to_string()),
    }
}

/// Applies `[key]` indexes to a value.
fn index<'a>(mut v: Value<'a>, keys: &'a [Key]) -> Result<Value<'a>, String> {
    for k in keys {
        v = match k {
            Key::Int(i) => v.index(*i)?,
            Key::Str(s) => v.get(s)?,
        };
    }
    Ok(v)
}

fn math<'a>(op: MathOp, l: Value<'a>, r: Value<'a>) -> Result<Value<'a>, String> {
    match (l, r) {
        (Value::Int(a), Value::Int(b)) => Ok(Value::Int(match op {
            MathOp::Add => a.wrapping_add(b),
            MathOp::Sub => a.wrapping_sub(b),
            MathOp::Mul => a.wrapping_mul(b),
            MathOp::Div if b == 0 => return Err("attempted to divide by 0".to_string()),
            MathOp::Div => a.wrapping_div(b),
        })),
        (Value::Float(a), Value::Float(b)) => Ok(Value::Float(match op {
            MathOp::Add => a + b,
            MathOp::Sub => a - b,
            MathOp::Mul => a * b,
            MathOp::Div if b == 0.0 => return Err("attempted to divide by 0".to_string()),
            MathOp::Div => a / b,
        })),
        (a, b) => Err(format!(
            "math between {} and {} is not supported (int64 with int64, float64 with float64)",
            a.type_name(),
            b.type_name()
        )),
    }
}

fn kind_code(kind: SpanKind) -> i64 {
    match kind {
        SpanKind::Unspecified => 0,
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// pdata's `SpanKind.String()`.
fn kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "Unspecified",
        SpanKind::Internal => "Internal",
        SpanKind::Server => "Server",
        SpanKind::Client => "Client",
        SpanKind::Producer => "Producer",
        SpanKind::Consumer => "Consumer",
    }
}
