//! The OTTL condition parser: recursive descent over the tokens, with the language's
//! precedence (`or` below `and` below `not`; `*` and `/` above `+` and `-`), paths and enums
//! resolved against the context while parsing, and converters checked for their arguments.

use super::OttlContext;
use super::OttlParseError;
use super::ast::{BoolExpr, Expr, Field, Key, MathOp, Path};
use super::functions;
use super::lexer::{Tok, Token, tokenize};
use super::paths::{ENUMS, resolve};
use super::specialise::specialise;

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
        self.bool_chain("or", Self::and, BoolExpr::Or)
    }

    fn and(&mut self) -> Result<BoolExpr, OttlParseError> {
        self.bool_chain("and", Self::not, BoolExpr::And)
    }

    /// Operands read by `operand` joined by the keyword `word`: the operand itself when there
    /// is one, else `join` of them all.
    fn bool_chain(
        &mut self,
        word: &str,
        operand: fn(&mut Self) -> Result<BoolExpr, OttlParseError>,
        join: fn(Vec<BoolExpr>) -> BoolExpr,
    ) -> Result<BoolExpr, OttlParseError> {
        let mut terms = vec![operand(self)?];
        while self.is_word(word) {
            self.bump();
            terms.push(operand(self)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            join(terms)
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
                Tok::Cmp(op) => Some(*op),
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
        self.math_chain(Self::term, |tok| match tok {
            Tok::Plus => Some(MathOp::Add),
            Tok::Minus => Some(MathOp::Sub),
            _ => None,
        })
    }

    fn term(&mut self) -> Result<Expr, OttlParseError> {
        self.math_chain(Self::signed, |tok| match tok {
            Tok::Star => Some(MathOp::Mul),
            Tok::Slash => Some(MathOp::Div),
            _ => None,
        })
    }

    /// Operands read by `operand` joined by the operators `operator` knows, grouped from the left
    /// (`a - b - c` is `(a - b) - c`): one precedence level of math.
    fn math_chain(
        &mut self,
        operand: fn(&mut Self) -> Result<Expr, OttlParseError>,
        operator: fn(&Tok) -> Option<MathOp>,
    ) -> Result<Expr, OttlParseError> {
        let mut left = operand(self)?;
        while let Some(op) = operator(self.peek()) {
            self.bump();
            let right = operand(self)?;
            left = Expr::Math(op, Box::new(left), Box::new(right));
        }
        Ok(left)
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
                    let Tok::Str(key) = self.peek().clone() else {
                        return Err(self.error_here("a map key must be a string"));
                    };
                    self.bump();
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
            let key = match self.peek().clone() {
                Tok::Str(s) => Key::Str(s),
                Tok::Int(i) => Key::Int(i),
                _ => {
                    return Err(self.error_here(
                        "expected a string or integer key; tracelab does not evaluate expressions as keys",
                    ));
                }
            };
            self.bump();
            self.expect(Tok::RBracket, "`]`")?;
            keys.push(key);
        }
        Ok(keys)
    }

    fn path(&mut self) -> Result<Expr, OttlParseError> {
        let column = self.column();
        let mut segments = Vec::new();
        loop {
            match self.peek().clone() {
                Tok::Ident(s) => {
                    self.bump();
                    segments.push(s);
                }
                _ => {
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
