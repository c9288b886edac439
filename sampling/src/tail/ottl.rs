//! OTTL conditions for the `ottl_condition` tail-sampling policy: a tokenizer, a
//! recursive-descent parser and an evaluator over tracelab's own span model.
//!
//! The language is the subset of the OpenTelemetry Transformation Language (collector-contrib
//! `pkg/ottl`) that sampling conditions use: paths of the `span` and `spanevent` contexts
//! (`name`, `kind`, `status.code`, `attributes["k"]`, `resource.attributes["k"]`,
//! `instrumentation_scope.name`, the ids, the timestamps; with or without the `span.` /
//! `spanevent.` prefix), the contexts' enums (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`, …),
//! literals (strings, ints, floats, booleans, `nil`, `0x` bytes, lists, maps), arithmetic,
//! the comparisons `==` `!=` `<` `<=` `>` `>=` with OTTL's cross-type rules, `and` `or` `not`
//! with OTTL's precedence (`not` binds tightest, then `and`, then `or`), parentheses, and the
//! converters in `functions`. A condition is parsed once, when the configuration is read;
//! parse errors carry the column they were found at.
//!
//! Layout:
//! - `lexer`: text to tokens with columns.
//! - `ast`: the parsed form.
//! - `parser`: tokens to expressions.
//! - `paths`: the contexts' paths and enums.
//! - `functions`: the converters.
//! - `specialise`: rewrites of common comparisons into faster forms with the same results.
//! - `value`: runtime values and the comparison rules.
//! - `eval`: evaluation against a span or a span event.

mod ast;
mod eval;
mod functions;
mod lexer;
mod parser;
mod paths;
mod specialise;
mod value;

use tracelab_trace::Span;

use ast::BoolExpr;
use eval::{Scope, eval_bool};

/// Which OTTL context a condition is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OttlContext {
    /// `span:` conditions, evaluated on each span.
    Span,
    /// `spanevent:` conditions, evaluated on each event of each span.
    SpanEvent,
}

impl OttlContext {
    /// The context's name as the Collector's configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            OttlContext::Span => "span",
            OttlContext::SpanEvent => "spanevent",
        }
    }
}

/// What happens when evaluating a condition fails (a converter given the wrong type, a
/// division by zero): the Collector's `error_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorMode {
    /// The policy's evaluation fails: the policy does not vote to sample.
    #[default]
    Propagate,
    /// The failing condition counts as false (the Collector logs it) and evaluation goes on.
    Ignore,
    /// As `ignore`, without logging.
    Silent,
}

impl ErrorMode {
    /// Reads the configuration value.
    pub fn parse(s: &str) -> Option<ErrorMode> {
        match s {
            "propagate" => Some(ErrorMode::Propagate),
            "ignore" => Some(ErrorMode::Ignore),
            "silent" => Some(ErrorMode::Silent),
            _ => None,
        }
    }
}

/// A condition that does not parse, and the 1-based column (in characters) where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct OttlParseError {
    /// 1-based column within the condition.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// One parsed condition.
#[derive(Debug, Clone)]
pub struct Condition {
    text: String,
    context: OttlContext,
    expr: BoolExpr,
}

impl Condition {
    /// Parses a condition written in a context.
    pub fn parse(text: &str, context: OttlContext) -> Result<Condition, OttlParseError> {
        Ok(Condition {
            text: text.to_string(),
            context,
            expr: parser::parse(text, context)?,
        })
    }

    /// The condition as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Its context.
    pub fn context(&self) -> OttlContext {
        self.context
    }

    /// Evaluates a `span` condition on a span.
    pub fn eval_span(&self, span: &Span) -> Result<bool, String> {
        eval_bool(&self.expr, &Scope { span, event: None })
    }

    /// Evaluates a `spanevent` condition on one event of a span.
    pub fn eval_event(&self, span: &Span, event: &tracelab_trace::Event) -> Result<bool, String> {
        eval_bool(
            &self.expr,
            &Scope {
                span,
                event: Some(event),
            },
        )
    }
}

/// What an `ottl_condition` policy's conditions say about one span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanOutcome {
    /// A condition is true for the span or one of its events.
    Match,
    /// No condition is true.
    NoMatch,
    /// Under `error_mode: propagate`, a condition failed before any was true.
    Error,
}

/// The conditions of one `ottl_condition` policy.
#[derive(Debug, Clone)]
pub struct OttlConditions {
    span: Vec<Condition>,
    spanevent: Vec<Condition>,
    error_mode: ErrorMode,
}

impl OttlConditions {
    /// The policy's `span` and `spanevent` conditions and its error mode.
    pub fn new(span: Vec<Condition>, spanevent: Vec<Condition>, error_mode: ErrorMode) -> Self {
        OttlConditions {
            span,
            spanevent,
            error_mode,
        }
    }

    /// The error mode.
    pub fn error_mode(&self) -> ErrorMode {
        self.error_mode
    }

    /// The `span` conditions.
    pub fn span_conditions(&self) -> &[Condition] {
        &self.span
    }

    /// The `spanevent` conditions.
    pub fn spanevent_conditions(&self) -> &[Condition] {
        &self.spanevent
    }

    /// Evaluates the conditions on a span as the Collector's policy does: the span conditions
    /// in order, then the event conditions on each event in order, any true one a match. A
    /// failing condition is the outcome under `propagate`, and is skipped otherwise.
    pub fn evaluate(&self, span: &Span) -> SpanOutcome {
        let propagate = self.error_mode == ErrorMode::Propagate;
        for c in &self.span {
            match c.eval_span(span) {
                Ok(true) => return SpanOutcome::Match,
                Ok(false) => {}
                Err(_) if propagate => return SpanOutcome::Error,
                Err(_) => {}
            }
        }
        if self.spanevent.is_empty() {
            return SpanOutcome::NoMatch;
        }
        for event in &span.events {
            for c in &self.spanevent {
                match c.eval_event(span, event) {
                    Ok(true) => return SpanOutcome::Match,
                    Ok(false) => {}
                    Err(_) if propagate => return SpanOutcome::Error,
                    Err(_) => {}
                }
            }
        }
        SpanOutcome::NoMatch
    }
}

#[cfg(test)]
mod tests;
