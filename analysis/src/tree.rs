//! The parent/child structure of one trace, resolved once so every analysis can walk it by index.
//!
//! Received traces are not always trees: a lost span leaves orphans, a service that drops the
//! context starts a second root, a buggy producer can even make a span its own ancestor. The
//! analyses must never loop or panic on such input, so this module decides once how each span
//! hangs in the tree and every walk goes through it.

use std::collections::HashMap;

use tracelab_trace::{Span, SpanId, Trace};

use crate::asynchrony;

/// How the spans of one trace hang together, by index into `Trace::spans`.
#[derive(Debug, Clone)]
pub struct SpanTree {
    /// The parent of each span, when its parent id names a span of this trace.
    pub parent: Vec<Option<usize>>,
    /// The children of each span, in start order (the order of `Trace::spans`).
    pub children: Vec<Vec<usize>>,
    /// Spans without a parent in this trace: true roots first, then orphans, each in start order.
    pub tops: Vec<usize>,
    /// Depth below the top of its subtree (tops are 0); `None` for spans no top reaches, which
    /// only happens when parent links form a cycle.
    pub depth: Vec<Option<usize>>,
    /// True for a span its parent does not wait for (see [`asynchrony::waits_for`]): it and
    /// everything under it block nothing of the parent.
    pub asynchronous: Vec<bool>,
    /// True for a root that links to another span of the trace (see
    /// [`asynchrony::continues_trace`]): it continues the request and never stands for it.
    pub continuation: Vec<bool>,
}

impl SpanTree {
    /// Resolves the parent links of `trace`.
    ///
    /// When two spans share an id, children attach to the first one; the duplicate still hangs
    /// under its own parent, so no span is lost from the walk.
    pub fn new(trace: &Trace) -> Self {
        let spans = &trace.spans;
        let mut index: HashMap<SpanId, usize> = HashMap::with_capacity(spans.len());
        for (i, s) in spans.iter().enumerate() {
            index.entry(s.span_id).or_insert(i);
        }
        let mut parent = vec![None; spans.len()];
        let mut children = vec![Vec::new(); spans.len()];
        let mut asynchronous = vec![false; spans.len()];
        let mut roots = Vec::new();
        let mut orphans = Vec::new();
        for (i, s) in spans.iter().enumerate() {
            match s.parent_span_id.and_then(|p| index.get(&p).copied()) {
                // A span naming itself as parent is treated as an orphan: attaching it would make
                // a one-span cycle that no walk could enter.
                Some(p) if p != i => {
                    parent[i] = Some(p);
                    children[p].push(i);
                    asynchronous[i] = !asynchrony::waits_for(&spans[p], s);
                }
                _ if s.parent_span_id.is_none() => roots.push(i),
                _ => orphans.push(i),
            }
        }
        let mut tops = roots;
        tops.extend(orphans);

        let mut depth = vec![None; spans.len()];
        let mut stack: Vec<(usize, usize)> = tops.iter().map(|&t| (t, 0)).collect();
        while let Some((i, d)) = stack.pop() {
            if depth[i].is_some() {
                continue;
            }
            depth[i] = Some(d);
            stack.extend(children[i].iter().map(|&c| (c, d + 1)));
        }
        let continuation = spans
            .iter()
            .map(|s| asynchrony::continues_trace(s, |id| index.contains_key(id)))
            .collect();
        SpanTree {
            parent,
            children,
            tops,
            depth,
            asynchronous,
            continuation,
        }
    }

    /// The children `parent` waits for: its children less the asynchronous ones.
    pub fn blocking_children(&self, parent: usize) -> impl Iterator<Item = usize> + '_ {
        self.children[parent]
            .iter()
            .copied()
            .filter(|&c| !self.asynchronous[c])
    }

    /// The top whose subtree stands for the whole request: the longest true root that does not
    /// merely continue another span of the trace, else the longest root, or, in a trace that
    /// lost its root, the longest orphan. Ties go to the earliest start.
    pub fn primary_top(&self, spans: &[Span]) -> Option<usize> {
        let roots: Vec<usize> = self
            .tops
            .iter()
            .copied()
            .filter(|&i| spans[i].parent_span_id.is_none())
            .collect();
        let requests: Vec<usize> = roots
            .iter()
            .copied()
            .filter(|&i| !self.continuation[i])
            .collect();
        let pool = if !requests.is_empty() {
            &requests
        } else if !roots.is_empty() {
            &roots
        } else {
            &self.tops
        };
        let mut best: Option<usize> = None;
        for &i in pool {
            let better = match best {
                None => true,
                Some(b) => spans[i].duration_nanos() > spans[b].duration_nanos(),
            };
            if better {
                best = Some(i);
            }
        }
        best
    }

    /// Spans in display order: a depth-first walk from each top, children in start order,
    /// followed by any span no top reaches. Each entry is `(index, depth)`.
    pub fn display_order(&self) -> Vec<(usize, usize)> {
        let n = self.parent.len();
        let mut seen = vec![false; n];
        let mut out = Vec::with_capacity(n);
        for &top in &self.tops {
            let mut stack = vec![(top, 0usize)];
            while let Some((i, d)) = stack.pop() {
                if seen[i] {
                    continue;
                }
                seen[i] = true;
                out.push((i, d));
                stack.extend(self.children[i].iter().rev().map(|&c| (c, d + 1)));
            }
        }
        for (i, was_seen) in seen.iter().enumerate() {
            if !was_seen {
                out.push((i, 0));
            }
        }
        out
    }
}
