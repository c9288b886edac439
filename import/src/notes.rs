//! The comments of the generated file: where each number came from, over how many samples,
//! and how well its model fits. They are kept by the YAML path of the value they explain
//! (`services.api.routes./pay.latency`) and written on the lines above it.

use indexmap::IndexMap;

use crate::fit::Fitted;

/// Comments by YAML path, in the order they were made.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Notes(pub(crate) IndexMap<String, Vec<String>>);

impl Notes {
    /// Adds a comment line above `path`.
    pub(crate) fn add(&mut self, path: &str, line: String) {
        self.0.entry(path.to_owned()).or_default().push(line);
    }

    /// Adds a comment line when there is one.
    pub(crate) fn maybe(&mut self, path: &str, line: Option<String>) {
        if let Some(line) = line {
            self.add(path, line);
        }
    }

    /// Says how a latency model was fitted.
    pub(crate) fn latency(&mut self, path: &str, fitted: &Fitted, what: &str) {
        self.add(path, format!("{what}, n = {}: {}", fitted.n, fitted.note));
    }

    /// The comment lines above `path`.
    pub fn at(&self, path: &str) -> &[String] {
        self.0.get(path).map_or(&[], Vec::as_slice)
    }
}
