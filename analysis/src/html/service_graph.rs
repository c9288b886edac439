//! The service dependency graph as an inline SVG, in a simple layered layout: callers on the
//! left, callees to their right, one column per call depth.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::escape::{html, hue};
use crate::analysis::ServiceStats;
use crate::format::{ms, percent};
use crate::graph::ServiceGraph;

const NODE_W: f64 = 170.0;
const NODE_H: f64 = 46.0;
const COL_GAP: f64 = 190.0;
const ROW_GAP: f64 = 30.0;
const PAD: f64 = 16.0;
/// Height of an edge's two-line label, and the width of one of its characters (10 px text;
/// an estimate that errs wide, since the page cannot measure text before drawing).
const LABEL_H: f64 = 25.0;
const LABEL_CHAR_W: f64 = 5.8;
/// Where along a forward edge its label may sit (0 is the caller's end, 1 the callee's).
const LABEL_POSITIONS: [f64; 7] = [0.5, 0.35, 0.65, 0.25, 0.75, 0.15, 0.85];
/// How far down a label may be pushed to find a free spot before it is drawn anyway.
const MAX_LABEL_MOVES: usize = 24;

/// Column of each service: the longest chain of calls leading to it. Relaxation stops after
/// as many rounds as there are services, so a call cycle cannot loop forever; services in a
/// cycle just end up in some column.
fn layers(graph: &ServiceGraph) -> Vec<usize> {
    let index: HashMap<&str, usize> = graph
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut layer = vec![0usize; graph.services.len()];
    for _ in 0..graph.services.len() {
        let mut changed = false;
        for e in &graph.edges {
            let (Some(&a), Some(&b)) = (index.get(e.caller.as_str()), index.get(e.callee.as_str()))
            else {
                continue;
            };
            if a != b && layer[b] < layer[a] + 1 {
                layer[b] = layer[a] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    layer
}

/// The graph as SVG; node labels show each service's critical-path share in slow requests.
pub fn service_graph_svg(graph: &ServiceGraph, services: &[ServiceStats]) -> String {
    if graph.services.is_empty() {
        return "<p class=\"meta\">No services.</p>".to_string();
    }
    let layer = layers(graph);
    let columns = layer.iter().max().map_or(1, |m| m + 1);
    let mut rows_in = vec![0usize; columns];
    let mut pos: HashMap<&str, (f64, f64)> = HashMap::new();
    for (i, name) in graph.services.iter().enumerate() {
        let row = rows_in[layer[i]];
        rows_in[layer[i]] += 1;
        let x = PAD + layer[i] as f64 * (NODE_W + COL_GAP);
        let y = PAD + row as f64 * (NODE_H + ROW_GAP);
        pos.insert(name.as_str(), (x, y));
    }
    let width = PAD * 2.0 + columns as f64 * NODE_W + (columns - 1) as f64 * COL_GAP;
    let tallest = rows_in.iter().max().copied().unwrap_or(1) as f64;
    // Room below the nodes only when some edge loops back under them.
    let loops_back = graph.edges.iter().any(|e| {
        match (pos.get(e.caller.as_str()), pos.get(e.callee.as_str())) {
            (Some(&(ax, _)), Some(&(bx, _))) => bx <= ax,
            _ => false,
        }
    });
    let height = PAD * 2.0
        + tallest * NODE_H
        + (tallest - 1.0) * ROW_GAP
        + if loops_back { 60.0 } else { 0.0 };
    let max_calls = graph
        .edges
        .iter()
        .map(|e| e.calls)
        .max()
        .unwrap_or(1)
        .max(1) as f64;

    // Edge labels are placed one by one, each moved down until it overlaps neither a node nor
    // a label placed before it: several edges leaving one caller, or an edge passing a column,
    // would otherwise print their numbers on top of each other.
    let mut taken: Vec<Rect> = pos
        .values()
        .map(|&(x, y)| Rect {
            left: x,
            top: y,
            right: x + NODE_W,
            bottom: y + NODE_H,
        })
        .collect();
    let mut bottom = height - PAD;
    // Edges to the next column claim their label spots first: their middle is free space
    // between two columns. Longer edges cross columns of nodes and take what is left.
    let span = |e: &&crate::graph::ServiceEdge| match (
        pos.get(e.caller.as_str()),
        pos.get(e.callee.as_str()),
    ) {
        (Some(&(ax, _)), Some(&(bx, _))) if bx > ax => bx - ax,
        _ => f64::INFINITY,
    };
    let mut edges: Vec<&crate::graph::ServiceEdge> = graph.edges.iter().collect();
    edges.sort_by(|a, b| span(a).total_cmp(&span(b)));
    let mut s = String::new();
    for e in edges {
        let (Some(&(ax, ay)), Some(&(bx, by))) =
            (pos.get(e.caller.as_str()), pos.get(e.callee.as_str()))
        else {
            continue;
        };
        let (x1, y1) = (ax + NODE_W, ay + NODE_H / 2.0);
        let (x2, y2) = (bx, by + NODE_H / 2.0);
        // Forward edges curve gently to the right; an edge going back (a cycle, or a call
        // within one column) loops below the nodes so it does not hide behind them.
        let d = if x2 > x1 {
            let mid = (x1 + x2) / 2.0;
            format!("M{x1:.1},{y1:.1} C{mid:.1},{y1:.1} {mid:.1},{y2:.1} {x2:.1},{y2:.1}")
        } else {
            let drop = ay.max(by) + NODE_H + 30.0;
            format!(
                "M{:.1},{:.1} C{:.1},{drop:.1} {:.1},{drop:.1} {:.1},{:.1}",
                ax + NODE_W / 2.0,
                ay + NODE_H,
                ax + NODE_W / 2.0,
                bx + NODE_W / 2.0,
                bx + NODE_W / 2.0,
                by + NODE_H,
            )
        };
        // Labels sit just above the edge's midpoint; a backward edge's midpoint is below.
        let (lx, ly) = if x2 > x1 {
            ((x1 + x2) / 2.0, (y1 + y2) / 2.0 - 4.0)
        } else {
            ((ax + bx) / 2.0 + NODE_W / 2.0, ay.max(by) + NODE_H + 36.0)
        };
        let stroke = 1.0 + 4.0 * (e.calls as f64).ln_1p() / max_calls.ln_1p();
        let class = if e.error_rate >= 0.05 {
            "edge failing"
        } else {
            "edge"
        };
        let label = format!("{} calls · {} errors", e.calls, percent(e.error_rate));
        let latency = format!("p99 {}", ms(e.latency.p99_ns));
        let half_width =
            label.chars().count().max(latency.chars().count()) as f64 * LABEL_CHAR_W / 2.0;
        // First choice: just above some point of the edge itself, from its middle outwards,
        // so the numbers stay next to the arrow they describe. Last resort: below the middle,
        // as far down as it takes.
        let along: Vec<(f64, f64)> = if x2 > x1 {
            let mid = (x1 + x2) / 2.0;
            LABEL_POSITIONS
                .iter()
                .map(|&t| {
                    let (p, q) = (1.0 - t, t);
                    let near = p * p * p + 3.0 * q * p * p;
                    let far = 3.0 * q * q * p + q * q * q;
                    let x = x1 * p * p * p + mid * 3.0 * q * p + x2 * q * q * q;
                    (x, y1 * near + y2 * far - 4.0)
                })
                .collect()
        } else {
            vec![(lx, ly)]
        };
        let free = |x: f64, top: f64| {
            let here = Rect {
                left: x - half_width,
                top,
                right: x + half_width,
                bottom: top + LABEL_H,
            };
            !taken.iter().any(|t| t.overlaps(&here))
        };
        let (lx, top) = along
            .iter()
            .map(|&(x, y)| (x, y - LABEL_H))
            .find(|&(x, top)| free(x, top))
            .unwrap_or_else(|| {
                let mut top = ly - LABEL_H;
                for _ in 0..MAX_LABEL_MOVES {
                    if free(lx, top) {
                        break;
                    }
                    top += LABEL_H + 2.0;
                }
                (lx, top)
            });
        taken.push(Rect {
            left: lx - half_width,
            top,
            right: lx + half_width,
            bottom: top + LABEL_H,
        });
        bottom = bottom.max(top + LABEL_H);
        let _ = write!(
            s,
            "<g class=\"{class}\"><path d=\"{d}\" stroke-width=\"{stroke:.1}\" marker-end=\"url(#arrow)\"><title>{} → {}: {label}, {latency}</title></path><text x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text><text x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{latency}</text></g>",
            html(&e.caller),
            html(&e.callee),
            top + 10.0,
            top + 22.0,
        );
    }
    for name in &graph.services {
        let Some(&(x, y)) = pos.get(name.as_str()) else {
            continue;
        };
        let share = services
            .iter()
            .find(|st| &st.service == name)
            .map(|st| st.critical_share_p99)
            .unwrap_or(0.0);
        let _ = write!(
            s,
            "<g class=\"node\" style=\"--hue:{}\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"8\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"name\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"sub\">{} of slow-request time</text></g>",
            hue(name),
            x + NODE_W / 2.0,
            y + 19.0,
            html(&crate::format::truncate(name, 22)),
            x + NODE_W / 2.0,
            y + 36.0,
            percent(share),
        );
    }
    s.push_str("</svg>\n");
    let height = height.max(bottom + PAD);
    format!(
        "<svg class=\"chart graph\" viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"Service dependency graph\">\
<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"10\" markerHeight=\"10\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" class=\"arrowhead\"/></marker></defs>{s}"
    )
}

/// An area of the drawing, in SVG units.
#[derive(Debug, Clone, Copy)]
struct Rect {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
}

impl Rect {
    fn overlaps(&self, other: &Rect) -> bool {
        self.left < other.right
            && other.left < self.right
            && self.top < other.bottom
            && other.top < self.bottom
    }
}
