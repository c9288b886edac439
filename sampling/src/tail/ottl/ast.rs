//! The parsed form of a condition: boolean and value expressions, paths and keys.

use super::functions::Func;
use super::value::CmpOp;

/// A boolean expression: a whole condition, or a part of one.
#[derive(Debug, Clone)]
pub(crate) enum BoolExpr {
    Or(Vec<BoolExpr>),
    And(Vec<BoolExpr>),
    Not(Box<BoolExpr>),
    Const(bool),
    Cmp(Expr, CmpOp, Expr),
    /// A converter whose result must be a boolean.
    Value(Expr),
    /// `attributes["k"] == "v"` (or `!=`, on a span, resource or event attribute map): the
    /// most common condition, answered without building values, with the same result as the
    /// general comparison (a missing or non-string attribute is "not equal").
    AttrIsStr {
        field: Field,
        key: String,
        value: String,
        equal: bool,
    },
    /// `attributes["k"] == "a" or attributes["k"] == "b" or ...`: one look-up of the key,
    /// then the values.
    AttrInStrs {
        field: Field,
        key: String,
        values: Vec<String>,
    },
}

/// A value expression.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Path(Path),
    Call {
        func: Box<Func>,
        args: Vec<Expr>,
        keys: Vec<Key>,
    },
    List(Vec<Expr>),
    Map(Vec<(String, Expr)>),
    Math(MathOp, Box<Expr>, Box<Expr>),
}

/// The arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MathOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// A telemetry field and the keys that index into it.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    pub field: Field,
    pub keys: Vec<Key>,
}

/// A `["key"]` or `[0]` index.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Key {
    Str(String),
    Int(i64),
}

/// The fields of tracelab's span model a condition can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Name,
    Kind,
    KindString,
    StatusCode,
    StatusMessage,
    Attributes,
    ResourceAttributes,
    ScopeName,
    TraceId,
    TraceIdString,
    SpanId,
    SpanIdString,
    ParentSpanId,
    ParentSpanIdString,
    TraceState,
    StartTime,
    EndTime,
    EventName,
    EventAttributes,
    EventTime,
}

impl Field {
    pub(crate) fn takes_keys(self) -> bool {
        matches!(
            self,
            Field::Attributes
                | Field::ResourceAttributes
                | Field::EventAttributes
                | Field::TraceState
        )
    }
}
