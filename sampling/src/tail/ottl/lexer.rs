//! The OTTL tokenizer: the text of one condition to tokens, each with the column it starts at.

use super::OttlParseError;
use super::value::CmpOp;

/// One token of a condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An identifier: a path segment, a keyword (`and`, `nil`), a converter or an enum.
    Ident(String),
    /// A string literal, escapes resolved.
    Str(String),
    /// An integer literal (no sign: a leading `-` is an operator the parser folds in).
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A byte-slice literal (`0x0a0b`).
    Bytes(Vec<u8>),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Dot,
    Colon,
    /// `=`, only used by named function arguments.
    Assign,
    /// `==`, `!=`, `<`, `<=`, `>`, `>=`.
    Cmp(CmpOp),
    Plus,
    Minus,
    Star,
    Slash,
    /// The end of the condition.
    End,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Int(i) => format!("number {i}"),
            Tok::Float(f) => format!("number {f}"),
            Tok::Bytes(_) => "byte literal".to_string(),
            Tok::End => "the end of the condition".to_string(),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Colon => ":",
            Tok::Assign => "=",
            Tok::Cmp(op) => op.symbol(),
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            _ => "",
        }
    }
}

/// A token and the 1-based column (in characters) of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub column: usize,
}

/// Splits a condition into tokens; the last one is always [`Tok::End`].
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, OttlParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, message: String| OttlParseError {
        column: at + 1,
        message,
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // Where the token ends: after this one character unless the arm reads more.
        let mut end = i + 1;
        let tok = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            ',' => Tok::Comma,
            ':' => Tok::Colon,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '*' => Tok::Star,
            '/' => Tok::Slash,
            '=' | '!' | '<' | '>' if chars.get(i + 1) == Some(&'=') => {
                end = i + 2;
                Tok::Cmp(match c {
                    '=' => CmpOp::Eq,
                    '!' => CmpOp::Ne,
                    '<' => CmpOp::Le,
                    // `>`, the last of the four.
                    _ => CmpOp::Ge,
                })
            }
            '=' => Tok::Assign,
            '<' => Tok::Cmp(CmpOp::Lt),
            '>' => Tok::Cmp(CmpOp::Gt),
            '"' => {
                let (s, after) = string(&chars, i).map_err(|(at, m)| err(at, m))?;
                end = after;
                Tok::Str(s)
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let (tok, after) = number(&chars, i).map_err(|(at, m)| err(at, m))?;
                end = after;
                tok
            }
            '.' => Tok::Dot,
            c if c.is_ascii_alphabetic() || c == '_' => {
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_')
                {
                    end += 1;
                }
                Tok::Ident(chars[i..end].iter().collect())
            }
            '!' => {
                return Err(err(
                    i,
                    "`!` is not an operator here; write `not` or `!=`".into(),
                ));
            }
            '&' | '|' => {
                return Err(err(
                    i,
                    format!("`{c}` is not an operator in OTTL; write `and` or `or`"),
                ));
            }
            '\'' => {
                return Err(err(
                    i,
                    "strings are written in double quotes in OTTL".to_string(),
                ));
            }
            other => return Err(err(i, format!("unexpected character `{other}`"))),
        };
        out.push(Token { tok, column: i + 1 });
        i = end;
    }
    out.push(Token {
        tok: Tok::End,
        column: chars.len() + 1,
    });
    Ok(out)
}

/// A double-quoted string starting at `open`: `\"` and `\\` are the quote and the backslash,
/// `\n`, `\t` and `\r` are the control characters, and any other backslash is kept as it is,
/// so regular expressions such as `"\d+"` read as written. Returns the text and the index
/// after the closing quote.
fn string(chars: &[char], open: usize) -> Result<(String, usize), (usize, String)> {
    let mut s = String::new();
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((s, i + 1)),
            '\\' => {
                match chars.get(i + 1) {
                    Some('"') => s.push('"'),
                    Some('\\') => s.push('\\'),
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some(other) => {
                        s.push('\\');
                        s.push(*other);
                    }
                    None => break,
                }
                i += 2;
            }
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    Err((open, "string is not closed: a `\"` is missing".to_string()))
}

/// A number starting at `start`: decimal digits with an optional fraction (`1`, `1.5`,
/// `.5`), or a byte literal (`0x01ab`).
fn number(chars: &[char], start: usize) -> Result<(Tok, usize), (usize, String)> {
    if chars[start] == '0' && matches!(chars.get(start + 1), Some('x' | 'X')) {
        let mut end = start + 2;
        while end < chars.len() && chars[end].is_ascii_hexdigit() {
            end += 1;
        }
        let hex: String = chars[start + 2..end].iter().collect();
        if hex.is_empty() || !hex.len().is_multiple_of(2) {
            return Err((
                start,
                "a byte literal needs an even number of hex digits after 0x".to_string(),
            ));
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|k| u8::from_str_radix(&hex[k..k + 2], 16).unwrap_or(0))
            .collect();
        return Ok((Tok::Bytes(bytes), end));
    }
    let mut end = start;
    while end < chars.len() && chars[end].is_ascii_digit() {
        end += 1;
    }
    let mut float = false;
    if chars.get(end) == Some(&'.') && chars.get(end + 1).is_some_and(char::is_ascii_digit) {
        float = true;
        end += 1;
        while end < chars.len() && chars[end].is_ascii_digit() {
            end += 1;
        }
    }
    if chars
        .get(end)
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_')
    {
        return Err((end, "a number runs into a name".to_string()));
    }
    let text: String = chars[start..end].iter().collect();
    let tok = if float {
        Tok::Float(
            text.parse()
                .map_err(|_| (start, "invalid number".to_string()))?,
        )
    } else {
        Tok::Int(
            text.parse()
                .map_err(|_| (start, format!("{text} does not fit in a 64-bit integer")))?,
        )
    };
    Ok((tok, end))
}
