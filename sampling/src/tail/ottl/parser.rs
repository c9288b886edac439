//! The OTTL condition parser: recursive descent over the tokens, with the language's
//! precedence (`or` below `and` below `not`; `*` and `/` above `+` and `-`), paths and enums
//! resolved against the context while parsing, and converters checked for their arguments.

use super::OttlContext;
use super::OttlParseError;
use super::functions::{self, Func};
use super::lexer::{Tok, Token, tokenize};
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
    fn takes_keys(self) -> bool {
        matches!(
            self,
            Field::Attributes
                | Field::ResourceAttributes
                | Field::EventAttributes
                | Field::TraceState
        )
    }
}

/// The enums of the span and span event contexts.
const ENUMS: &[(&str, i64)] = &[
    ("SPAN_KIND_UNSPECIFIED", 0),
    ("SPAN_KIND_INTERNAL", 1),
    ("SPAN_KIND_SERVER", 2),
    ("SPAN_KIND_CLIENT", 3),
    ("SPAN_KIND_PRODUCER", 4),
    ("SPAN_KIND_CONSUMER", 5),
    ("STATUS_CODE_UNSET", 0),
    ("STATUS_CODE_OK", 1),
    ("STATUS_CODE_ERROR", 2),
];

/// Parses one condition.
pub(crate) fn parse(text: &str, ctx: OttlContext) -> Result<BoolExpr, OttlParseError> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        ctx,
    };
    if p.peek() == &Tok::End {
        return Err(p.error_here("the condition is empty"));
    }
    let expr = p.or()?;
    if p.peek() != &Tok::End {
        return Err(p.error_here(format!(
            "expected `and`, `or` or the end of the condition, found {}",
            p.peek().describe()
        )));
    }
    Ok(specialise(expr))
}

/// Merges adjacent `attributes["k"] == "v"` terms of an `or` that test the same key into
/// one look-up. Only neighbours are merged, so no term that could fail is skipped or moved:
/// the result, errors included, is the same.
fn merge_equalities(terms: Vec<BoolExpr>) -> BoolExpr {
    let mut out: Vec<BoolExpr> = Vec::with_capacity(terms.len());
    for t in terms {
        let BoolExpr::AttrIsStr {
            field,
            key,
            value,
            equal: true,
        } = t
        else {
            out.push(t);
            continue;
        };
        let same_key = |f: &Field, k: &String| *f == field && *k == key;
        match out.last_mut() {
            Some(BoolExpr::AttrInStrs {
                field: f,
                key: k,
                values,
            }) if same_key(f, k) => values.push(value),
            Some(last @ BoolExpr::AttrIsStr { equal: true, .. }) if matches!(&*last, BoolExpr::AttrIsStr { field: f, key: k, .. } if same_key(f, k)) =>
            {
                let previous = std::mem::replace(last, BoolExpr::Const(false));
                let BoolExpr::AttrIsStr { value: first, .. } = previous else {
                    *last = previous;
                    continue;
                };
                *last = BoolExpr::AttrInStrs {
                    field,
                    key,
                    values: vec![first, value],
                };
            }
            _ => out.push(BoolExpr::AttrIsStr {
                field,
                key,
                value,
                equal: true,
            }),
        }
    }
    if out.len() == 1 {
        out.remove(0)
    } else {
        BoolExpr::Or(out)
    }
}

/// Rewrites the comparisons that have a faster equivalent form.
fn specialise(expr: BoolExpr) -> BoolExpr {
    let attr_str = |path: &Path, op: CmpOp, value: &str| -> Option<BoolExpr> {
        let maps = matches!(
            path.field,
            Field::Attributes | Field::ResourceAttributes | Field::EventAttributes
        );
        match (maps, path.keys.as_slice(), op) {
            (true, [Key::Str(key)], CmpOp::Eq | CmpOp::Ne) => Some(BoolExpr::AttrIsStr {
                field: path.field,
                key: key.clone(),
                value: value.to_string(),
                equal: op == CmpOp::Eq,
            }),
            _ => None,
        }
    };
    match expr {
        BoolExpr::Or(terms) => {
            let terms: Vec<BoolExpr> = terms.into_iter().map(specialise).collect();
            merge_equalities(terms)
        }
        BoolExpr::And(terms) => BoolExpr::And(terms.into_iter().map(specialise).collect()),
        BoolExpr::Not(inner) => BoolExpr::Not(Box::new(specialise(*inner))),
        BoolExpr::Cmp(Expr::Path(p), op, Expr::Str(v))
        | BoolExpr::Cmp(Expr::Str(v), op, Expr::Path(p)) => match attr_str(&p, op, &v) {
            Some(fast) => fast,
            None => BoolExpr::Cmp(Expr::Path(p), op, Expr::Str(v)),
        },
        other => other,
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    ctx: OttlContext,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].tok
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        let i = (self.pos + ahead).min(self.tokens.len() - 1);
        &self.tokens[i].tok
    }

    fn column(&self) -> usize {
        self.tokens[self.pos].column
    }

    fn bump(&mut self) -> Tok {
        let t = self.tokens[self.pos].tok.clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn error_here(&self, message: impl Into<String>) -> OttlParseError {
        OttlParseError {
            column: self.column(),
            message: message.into(),
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), OttlParseError> {
        if *self.peek() == tok {
            self.bump();
            Ok(())
        } else {
            Err(self.error_here(format!("expected {what}, found {}", self.peek().describe())))
        }
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w == word)
    }

    fn or(&mut self) -> Result<BoolExpr, OttlParseError> {
        let mut terms = vec![self.and()?];
        while self.is_word("or") {
            self.bump();
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            BoolExpr::Or(terms)
        })
    }

    fn and(&mut self) -> Result<BoolExpr, OttlParseError> {
        let mut terms = vec![self.not()?];
        while self.is_word("and") {
            self.bump();
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            BoolExpr::And(terms)
        })
    }

    fn not(&mut self) -> Result<BoolExpr, OttlParseError> {
        if self.is_word("not") {
            self.bump();
            return Ok(BoolExpr::Not(Box::new(self.not()?)));
        }
        self.boolean()
    }

    /// A comparison, a boolean literal, a converter returning a boolean, or a parenthesised
    /// boolean expression. A `(` may open either a boolean group or a math group
    /// (`(1 + 2) > x`), so the value reading is tried first and the group second.
    fn boolean(&mut self) -> Result<BoolExpr, OttlParseError> {
        let start = self.pos;
        let starts_group = self.peek() == &Tok::LParen;
        let as_value = self.value().and_then(|left| {
            let op = match self.peek() {
                Tok::Eq => Some(CmpOp::Eq),
                Tok::Ne => Some(CmpOp::Ne),
                Tok::Lt => Some(CmpOp::Lt),
                Tok::Le => Some(CmpOp::Le),
                Tok::Gt => Some(CmpOp::Gt),
                Tok::Ge => Some(CmpOp::Ge),
                _ => None,
            };
            match (op, left) {
                (Some(op), left) => {
                    self.bump();
                    let right = self.value()?;
                    Ok(BoolExpr::Cmp(left, op, right))
                }
                (None, Expr::Bool(b)) => Ok(BoolExpr::Const(b)),
                (None, call @ Expr::Call { .. }) => Ok(BoolExpr::Value(call)),
                (None, _) if starts_group => Err(self.error_here("not a boolean group")),
                (None, _) => Err(self.error_here(format!(
                    "expected a comparison operator (==, !=, <, <=, >, >=), found {}",
                    self.peek().describe()
                ))),
            }
        });
        match as_value {
            Ok(e) => Ok(e),
            Err(value_error) if starts_group => {
                self.pos = start;
                self.bump();
                let group = self.or().and_then(|inner| {
                    self.expect(Tok::RParen, "`)`")?;
                    Ok(inner)
                });
                match group {
                    Ok(g) => Ok(g),
                    // Report whichever reading got further into the text.
                    Err(group_error) if group_error.column >= value_error.column => {
                        Err(group_error)
                    }
                    Err(_) => Err(value_error),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn value(&mut self) -> Result<Expr, OttlParseError> {
        let mut left = self.term()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => MathOp::Add,
                Tok::Minus => MathOp::Sub,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.term()?;
            left = Expr::Math(op, Box::new(left), Box::new(right));
        }
    }

    fn term(&mut self) -> Result<Expr, OttlParseError> {
        let mut left = self.signed()?;
        loop {
            let op = match self.peek() {
                Tok::Star => MathOp::Mul,
                Tok::Slash => MathOp::Div,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.signed()?;
            left = Expr::Math(op, Box::new(left), Box::new(right));
        }
    }

    /// A signed number literal (`-1`, `+.5`) or a primary value.
    fn signed(&mut self) -> Result<Expr, OttlParseError> {
        let negative = match self.peek() {
            Tok::Minus => true,
            Tok::Plus => false,
            _ => return self.primary(),
        };
        let column = self.column();
        self.bump();
        match self.bump() {
            Tok::Int(i) => Ok(Expr::Int(if negative { -i } else { i })),
            Tok::Float(f) => Ok(Expr::Float(if negative { -f } else { f })),
            _ => Err(OttlParseError {
                column,
                message: "a sign must be followed by a number".to_string(),
            }),
        }
    }

    fn primary(&mut self) -> Result<Expr, OttlParseError> {
        let column = self.column();
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(Expr::Str(s))
            }
            Tok::Int(i) => {
                self.bump();
                Ok(Expr::Int(i))
            }
            Tok::Float(f) => {
                self.bump();
                Ok(Expr::Float(f))
            }
            Tok::Bytes(b) => {
                self.bump();
                Ok(Expr::Bytes(b))
            }
            Tok::LParen => {
                self.bump();
                let inner = self.value()?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(inner)
            }
            Tok::LBracket => {
                self.bump();
                let mut items = Vec::new();
                while self.peek() != &Tok::RBracket {
                    items.push(self.value()?);
                    if self.peek() != &Tok::Comma {
                        break;
                    }
                    self.bump();
                }
                self.expect(Tok::RBracket, "`,` or `]`")?;
                Ok(Expr::List(items))
            }
            Tok::LBrace => {
                self.bump();
                let mut entries = Vec::new();
                while self.peek() != &Tok::RBrace {
                    let Tok::Str(key) = self.bump() else {
                        self.pos -= 1;
                        return Err(self.error_here("a map key must be a string"));
                    };
                    self.expect(Tok::Colon, "`:`")?;
                    entries.push((key, self.value()?));
                    if self.peek() != &Tok::Comma {
                        break;
                    }
                    self.bump();
                }
                self.expect(Tok::RBrace, "`,` or `}`")?;
                Ok(Expr::Map(entries))
            }
            Tok::Ident(word) => match word.as_str() {
                "true" => {
                    self.bump();
                    Ok(Expr::Bool(true))
                }
                "false" => {
                    self.bump();
                    Ok(Expr::Bool(false))
                }
                "nil" => {
                    self.bump();
                    Ok(Expr::Nil)
                }
                "and" | "or" | "not" => {
                    Err(self.error_here(format!("expected a value, found `{word}`")))
                }
                w if w.starts_with(|c: char| c.is_ascii_uppercase()) => {
                    if self.peek_at(1) == &Tok::LParen {
                        self.call(word, column)
                    } else {
                        self.bump();
                        ENUMS
                            .iter()
                            .find(|(name, _)| *name == word)
                            .map(|(_, v)| Expr::Int(*v))
                            .ok_or(OttlParseError {
                                column,
                                message: format!(
                                    "unknown enum `{word}`; the span contexts know SPAN_KIND_* and STATUS_CODE_*"
                                ),
                            })
                    }
                }
                _ => self.path(),
            },
            other => Err(self.error_here(format!("expected a value, found {}", other.describe()))),
        }
    }

    fn keys(&mut self) -> Result<Vec<Key>, OttlParseError> {
        let mut keys = Vec::new();
        while self.peek() == &Tok::LBracket {
            self.bump();
            let key = match self.bump() {
                Tok::Str(s) => Key::Str(s),
                Tok::Int(i) => Key::Int(i),
                _ => {
                    self.pos -= 1;
                    return Err(self.error_here(
                        "expected a string or integer key; tracelab does not evaluate expressions as keys",
                    ));
                }
            };
            self.expect(Tok::RBracket, "`]`")?;
            keys.push(key);
        }
        Ok(keys)
    }

    fn path(&mut self) -> Result<Expr, OttlParseError> {
        let column = self.column();
        let mut segments = Vec::new();
        loop {
            match self.bump() {
                Tok::Ident(s) => segments.push(s),
                _ => {
                    self.pos -= 1;
                    return Err(self.error_here("expected a path segment after `.`"));
                }
            }
            if self.peek() != &Tok::Dot {
                break;
            }
            self.bump();
        }
        if self.peek() == &Tok::LParen {
            return Err(OttlParseError {
                column,
                message: format!(
                    "`{}` is an editor (lower-case function); conditions can only call converters",
                    segments.join(".")
                ),
            });
        }
        let field =
            resolve(&segments, self.ctx).map_err(|message| OttlParseError { column, message })?;
        let keys_column = self.column();
        let keys = self.keys()?;
        if !keys.is_empty() {
            if !field.takes_keys() {
                return Err(OttlParseError {
                    column: keys_column,
                    message: format!("path `{}` cannot be indexed", segments.join(".")),
                });
            }
            if !matches!(keys[0], Key::Str(_)) {
                return Err(OttlParseError {
                    column: keys_column,
                    message: format!("path `{}` is indexed by a string key", segments.join(".")),
                });
            }
            if field == Field::TraceState && keys.len() > 1 {
                return Err(OttlParseError {
                    column: keys_column,
                    message: "trace_state takes a single key".to_string(),
                });
            }
        }
        Ok(Expr::Path(Path { field, keys }))
    }

    fn call(&mut self, name: String, column: usize) -> Result<Expr, OttlParseError> {
        self.bump();
        self.expect(Tok::LParen, "`(`")?;
        let mut args = Vec::new();
        while self.peek() != &Tok::RParen {
            let arg_column = self.column();
            let named = match (self.peek().clone(), self.peek_at(1)) {
                (Tok::Ident(n), Tok::Assign) => {
                    self.bump();
                    self.bump();
                    Some(n)
                }
                _ => None,
            };
            let value = self.value()?;
            args.push(functions::Arg {
                name: named,
                value,
                column: arg_column,
            });
            if self.peek() != &Tok::Comma {
                break;
            }
            self.bump();
        }
        self.expect(Tok::RParen, "`,` or `)`")?;
        let keys = self.keys()?;
        functions::build(&name, args, keys, self.ctx, column)
    }
}

/// Resolves the dotted segments of a path in a context: `span.`/`spanevent.` prefixes name
/// the context explicitly, bare names mean the context's own object.
fn resolve(segments: &[String], ctx: OttlContext) -> Result<Field, String> {
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let shown = parts.join(".");
    let common = match parts.as_slice() {
        ["resource", "attributes"] => Some(Field::ResourceAttributes),
        ["instrumentation_scope" | "scope", "name"] => Some(Field::ScopeName),
        _ => None,
    };
    if let Some(f) = common {
        return Ok(f);
    }
    let span = |rest: &[&str]| -> Option<Field> {
        Some(match rest {
            ["name"] => Field::Name,
            ["kind"] => Field::Kind,
            ["kind", "string"] => Field::KindString,
            ["status", "code"] => Field::StatusCode,
            ["status", "message"] => Field::StatusMessage,
            ["attributes"] => Field::Attributes,
            ["trace_id"] => Field::TraceId,
            ["trace_id", "string"] => Field::TraceIdString,
            ["span_id"] => Field::SpanId,
            ["span_id", "string"] => Field::SpanIdString,
            ["parent_span_id"] => Field::ParentSpanId,
            ["parent_span_id", "string"] => Field::ParentSpanIdString,
            ["trace_state"] => Field::TraceState,
            ["start_time_unix_nano"] => Field::StartTime,
            ["end_time_unix_nano"] => Field::EndTime,
            _ => return None,
        })
    };
    let event = |rest: &[&str]| -> Option<Field> {
        Some(match rest {
            ["name"] => Field::EventName,
            ["attributes"] => Field::EventAttributes,
            ["time_unix_nano"] => Field::EventTime,
            _ => return None,
        })
    };
    let found = match (ctx, parts.as_slice()) {
        (_, ["span", rest @ ..]) => span(rest),
        (OttlContext::Span, ["spanevent", ..]) => {
            return Err(format!(
                "path `{shown}` reads a span event, which only `spanevent` conditions can"
            ));
        }
        (OttlContext::SpanEvent, ["spanevent", rest @ ..]) => event(rest),
        (OttlContext::Span, rest) => span(rest),
        (OttlContext::SpanEvent, rest) => event(rest),
    };
    found.ok_or_else(|| {
        let known = match ctx {
            OttlContext::Span => {
                "name, kind, kind.string, status.code, status.message, attributes[\"k\"], trace_id, span_id, parent_span_id (and their .string), trace_state, start_time_unix_nano, end_time_unix_nano, resource.attributes[\"k\"], instrumentation_scope.name"
            }
            OttlContext::SpanEvent => {
                "name, attributes[\"k\"], time_unix_nano, span.<any span path>, resource.attributes[\"k\"], instrumentation_scope.name"
            }
        };
        format!(
            "unknown path `{shown}` in the {} context; tracelab reads {known}",
            ctx.name()
        )
    })
}
