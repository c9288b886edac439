//! The tracelab scenario model: the services a run simulates, what each route does, and the
//! load driven through them, read from a YAML file and checked before anything runs.
//!
//! The crate does no I/O: the caller reads the file and hands its text to [`parse`], which
//! returns either a [`Scenario`] that passed every check or [`Diagnostics`] listing every
//! problem found, each with file, line, column and field path.
//!
//! Layout:
//! - [`model`]: `Scenario`, `Service`, `Route`, `Step` and the rest of the model.
//! - [`balance`]: which instance of a service a call reaches, by the service's policy.
//! - [`latency`]: `LatencyModel`, sampling and analytic means.
//! - [`fault`]: `Fault`, `Incident`, `RandomIncidents`: what goes wrong, and when.
//! - [`resource`]: retries, database, cache and queue steps.
//! - [`arrival`]: the arrival models of the `load:` section and their rate profiles.
//! - [`diagnostic`]: `Diagnostic` and `Diagnostics`, how problems are reported.
//! - [`seed`]: the named random streams every draw of a run comes from.
//! - [`topology`]: worst cases read off the call graph (spans and open calls per request).
//! - [`schema`]: the JSON Schema of the format, generated from the model.
//! - `node`: the YAML document as a tree of located nodes.
//! - `decode`: the tree read into a `Scenario` through the model's serde derives, with every
//!   problem located.
//! - `names`: enum variant names as serde spells them (`LatencyModel::kinds()`, `kind()`).
//! - `validate`: references, call cycles and value ranges.
//! - `duration`: durations with units (`800ms`, `30s`), for files and the command line.
//!
//! One definition per concept: the model types and their serde attributes are the format.
//! The decoder, the kind names, validation's paths and the JSON Schema all follow from them,
//! and no `match` on a model enum has a catch-all arm, so a new latency or arrival model is a
//! compile error everywhere it needs handling.

pub mod arrival;
pub mod balance;
pub mod diagnostic;
pub mod fault;
pub mod latency;
pub mod model;
pub mod resource;
pub mod schema;
pub mod seed;
pub mod topology;

mod decode;
mod duration;
mod names;
mod node;
mod validate;

pub use validate::limits;

use std::collections::HashMap;

use serde::de::DeserializeOwned;

pub use arrival::{ArrivalModel, Process, Ramp, RateProfile, Spike, Stage};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use duration::parse as parse_duration;
pub use fault::{Fault, FaultKind, Incident, LatencyFault, RandomIncidents};
pub use latency::{LatencyModel, MAX_SAMPLE};
pub use model::{
    Balance, Call, Entry, ErrorModel, Instance, InstanceIndex, Load, Parallel, Route, Scenario,
    Service, Step, Work,
};
pub use resource::{Cache, Db, Publish, Retry};

use node::Pos;

/// Reads and checks a scenario. `file` names the source in diagnostics and is not opened.
///
/// On failure every problem that could be found is returned, in file order: every unknown or
/// malformed field, then every broken rule (dangling references, call cycles, values out of
/// range) in the parts of the file that could be read. Only a YAML syntax error stops the
/// reading early, since nothing after it can be trusted.
pub fn parse(source: &str, file: &str) -> Result<Scenario, Diagnostics> {
    let root = match node::read(source) {
        Ok(root) => root,
        Err(error) => {
            let diagnostic = located(file, error.pos, String::new(), error.message, None);
            return Err(Diagnostics(vec![diagnostic]));
        }
    };
    let mut decoded = decode::decode(&root);
    if !decoded.given("load.duration") {
        decoded.scenario.load.duration_from_stages();
    }
    let mut diagnostics: Vec<Diagnostic> = std::mem::take(&mut decoded.issues)
        .into_iter()
        .map(|issue| located(file, issue.pos, issue.path, issue.message, issue.help))
        .collect();
    for mut finding in validate::check(&decoded.scenario, &|path| decoded.given(path)) {
        finding.path = decoded.source_path(&finding.path);
        // A rule broken by a placeholder standing in for a field that is already reported
        // would only repeat that report in a more confusing way.
        let moot = decoded.broken.iter().any(|broken| {
            is_within(&finding.path, broken)
                || (finding.about_collection && is_within(broken, &finding.path))
                || finding.assumes.iter().any(|read| is_within(read, broken))
        });
        if moot {
            continue;
        }
        let pos = position_of(&finding.path, &decoded.positions);
        diagnostics.push(located(
            file,
            pos,
            finding.path,
            finding.message,
            finding.help,
        ));
    }
    if diagnostics.is_empty() {
        Ok(decoded.scenario)
    } else {
        Err(Diagnostics::sorted(diagnostics))
    }
}

impl Scenario {
    /// Checks the rules [`parse`] checks after reading, for a scenario built or changed in
    /// code (for example after overriding the load rate from the command line). The
    /// diagnostics carry field paths but no file or position.
    pub fn validate(&self) -> Result<(), Diagnostics> {
        let diagnostics: Vec<Diagnostic> = validate::check(self, &|_| true)
            .into_iter()
            .map(|finding| Diagnostic {
                file: String::new(),
                line: 0,
                column: 0,
                path: finding.path,
                message: finding.message,
                help: finding.help,
            })
            .collect();
        if diagnostics.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics(diagnostics))
        }
    }
}

/// Reads one value of the model from YAML text, such as an arrival model given on the command
/// line in flow form (`{ramp: {from: 10, to: 200}}`), with the same located diagnostics as
/// [`parse`] (`file` names the source in them). Only the shape is checked: the scenario's
/// rules need the whole scenario, so [`Scenario::validate`] checks them after the value is
/// put in place.
pub fn parse_value<T: DeserializeOwned>(source: &str, file: &str) -> Result<T, Diagnostics> {
    let root = node::read(source).map_err(|error| {
        Diagnostics(vec![located(
            file,
            error.pos,
            String::new(),
            error.message,
            None,
        )])
    })?;
    decode::fragment(&root).map_err(|issues| {
        Diagnostics::sorted(
            issues
                .into_iter()
                .map(|issue| located(file, issue.pos, issue.path, issue.message, issue.help))
                .collect(),
        )
    })
}

fn located(
    file: &str,
    pos: Pos,
    path: String,
    message: String,
    help: Option<String>,
) -> Diagnostic {
    Diagnostic {
        file: file.to_owned(),
        line: pos.line,
        column: pos.column,
        path,
        message,
        help,
    }
}

/// Whether `path` is `ancestor` or lies under it (`a.b` and `a.b[0].c` are within `a.b`;
/// `a.bc` is not).
fn is_within(path: &str, ancestor: &str) -> bool {
    if ancestor.is_empty() {
        return true;
    }
    match path.strip_prefix(ancestor) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}

/// Where `path` is in the file, or where its nearest located ancestor is (a field left out
/// and given its default has no place of its own).
fn position_of(path: &str, positions: &HashMap<String, Pos>) -> Pos {
    let mut current = path;
    loop {
        if let Some(pos) = positions.get(current) {
            return *pos;
        }
        match current.rfind(['.', '[']) {
            Some(cut) => current = &current[..cut],
            None => {
                return positions
                    .get("")
                    .copied()
                    .unwrap_or(Pos { line: 1, column: 1 });
            }
        }
    }
}
