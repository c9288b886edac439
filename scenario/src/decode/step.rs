//! Steps: a mapping with exactly one of `call`, `parallel` or `work`, which says its kind.

use super::{CALL_FIELDS, Decoder, PARALLEL_FIELDS, STEP_KINDS, WORK_FIELDS, index};
use crate::diagnostic::closest;
use crate::model::{Call, Parallel, Step, Work, default_probability, default_repeat};
use crate::node::{Node, Value};

impl Decoder {
    pub(super) fn step(&mut self, node: &Node, path: &str) -> Option<Step> {
        self.locate(path, node.pos);
        let Value::Map(entries) = &node.value else {
            let help = Some(
                "write `- call: <service>`, `- parallel: [...]` or `- work: <name>`".to_owned(),
            );
            self.expected(node, path, "a step (a mapping)", help);
            return None;
        };
        let keys: Vec<String> = entries
            .iter()
            .filter_map(|(key, _)| key.key_text())
            .collect();
        let kinds: Vec<&str> = STEP_KINDS
            .iter()
            .copied()
            .filter(|kind| keys.iter().any(|key| key == kind))
            .collect();
        match kinds.as_slice() {
            ["call"] => self.call(node, path, "a call step").map(Step::Call),
            ["parallel"] => self.parallel(node, path).map(Step::Parallel),
            ["work"] => self.work(node, path).map(Step::Work),
            ["db"] => self.via_serde(node, path, "a db step").map(Step::Db),
            ["cache"] => self.via_serde(node, path, "a cache step").map(Step::Cache),
            ["publish"] => self
                .via_serde(node, path, "a publish step")
                .map(Step::Publish),
            [] => {
                let guess = keys.iter().find_map(|key| {
                    closest(key, STEP_KINDS.iter().copied()).map(|kind| (key, kind))
                });
                let help = match guess {
                    Some((key, kind)) => format!("did you mean `{kind}` instead of `{key}`?"),
                    None => format!("this step has: {}", keys.join(", ")),
                };
                let message = "a step must have exactly one of `call`, `parallel`, `work`, `db`, `cache` or `publish`; this one has none";
                self.error(node.pos, path, message.to_owned(), Some(help));
                None
            }
            several => {
                let listed: Vec<String> = several.iter().map(|kind| format!("`{kind}`")).collect();
                let message = format!(
                    "a step must have exactly one of `call`, `parallel`, `work`, `db`, `cache` or `publish`; this one has {}",
                    listed.join(" and ")
                );
                let help = "split it into one step per kind".to_owned();
                self.error(node.pos, path, message, Some(help));
                None
            }
        }
    }

    fn call(&mut self, node: &Node, path: &str, what: &str) -> Option<Call> {
        let fields = self.fields(node, path, what, CALL_FIELDS)?;
        let service = self.required(&fields, "call", what);
        let service = service.and_then(|node| self.string(node, &fields.path("call")));
        let route = self.required(&fields, "route", what);
        let route = route.and_then(|node| self.string(node, &fields.path("route")));
        let probability = fields
            .get("probability")
            .map(|node| self.number(node, &fields.path("probability")));
        let repeat = fields
            .get("repeat")
            .map(|node| self.integer(node, &fields.path("repeat")));
        let timeout = fields
            .get("timeout")
            .map(|node| self.duration(node, &fields.path("timeout")));
        let retry = fields
            .get("retry")
            .and_then(|node| self.via_serde(node, &fields.path("retry"), "a retry policy"));
        Some(Call {
            service: service?,
            route: route?,
            probability: probability.flatten().unwrap_or_else(default_probability),
            repeat: repeat.flatten().unwrap_or_else(default_repeat),
            timeout: timeout.flatten(),
            retry,
        })
    }

    fn parallel(&mut self, node: &Node, path: &str) -> Option<Parallel> {
        let fields = self.fields(node, path, "a parallel step", PARALLEL_FIELDS)?;
        let calls_path = fields.path("parallel");
        let mut calls = Vec::new();
        let items = fields
            .get("parallel")
            .and_then(|node| self.list(node, &calls_path, "calls"))
            .unwrap_or_default();
        for (position, item) in items.iter().enumerate() {
            let item_path = index(&calls_path, position);
            self.locate(&item_path, item.pos);
            if let Value::Map(entries) = &item.value
                && let Some(kind) = entries
                    .iter()
                    .filter_map(|(key, _)| key.key_text())
                    .find(|key| key == "work" || key == "parallel")
            {
                let message = format!("a parallel step runs calls only, not `{kind}`");
                let help = "give it its own step before or after the parallel step".to_owned();
                self.error(item.pos, &item_path, message, Some(help));
                continue;
            }
            if let Some(call) = self.call(item, &item_path, "a parallel call") {
                self.keep(&calls_path, calls.len(), position);
                calls.push(call);
            }
        }
        let max_parallel = fields
            .get("max_parallel")
            .and_then(|node| self.integer(node, &fields.path("max_parallel")));
        Some(Parallel {
            calls,
            max_parallel,
        })
    }

    fn work(&mut self, node: &Node, path: &str) -> Option<Work> {
        let fields = self.fields(node, path, "a work step", WORK_FIELDS)?;
        let name = fields
            .get("work")
            .and_then(|node| self.string(node, &fields.path("work")));
        let latency = self.required(&fields, "latency", "a work step");
        let latency = latency.and_then(|node| self.latency(node, &fields.path("latency")));
        let cpu = match fields.get("cpu").map(|node| &node.value) {
            None => false,
            Some(Value::Bool(cpu)) => *cpu,
            Some(_) => {
                let node = fields.get("cpu")?;
                self.expected(node, &fields.path("cpu"), "`true` or `false`", None);
                false
            }
        };
        let lock = fields
            .get("lock")
            .and_then(|node| self.string(node, &fields.path("lock")));
        Some(Work {
            name: name?,
            latency: latency?,
            cpu,
            lock,
        })
    }
}
