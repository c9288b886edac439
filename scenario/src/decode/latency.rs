//! Latency models: `{<model>: {<parameters>}}`, plus the shorthands `{constant: 5}` and
//! `5ms` for a fixed latency.

use super::{Decoder, join};
use crate::diagnostic::did_you_mean;
use crate::latency::LatencyModel;
use crate::node::{Node, Pos, Value};

impl Decoder {
    pub(super) fn latency(&mut self, node: &Node, path: &str) -> Option<LatencyModel> {
        let example = "write the model and its parameters, such as `{lognormal: {median_ms: 20, sigma: 0.5}}` or `{constant: 5}`";
        match &node.value {
            Value::Map(entries) if entries.len() == 1 => {
                let (key, params) = &entries[0];
                let kind = key.key_text().unwrap_or_default();
                let kind_path = join(path, &kind);
                self.locate(&kind_path, params.pos);
                self.latency_params(&kind, key.pos, params, &kind_path)
            }
            Value::Str(text) => match crate::duration::parse(text) {
                // `latency: 5ms` is a constant latency; the unit makes it unambiguous.
                Ok(duration) => Some(LatencyModel::Constant {
                    ms: duration.as_secs_f64() * 1000.0,
                }),
                Err(message) => {
                    self.error(node.pos, path, message, Some(example.to_owned()));
                    None
                }
            },
            Value::Int(_) | Value::Float(_) => {
                let help = format!(
                    "for a fixed latency write `{{constant: {0}}}` or `{0}ms`",
                    node.key_text().unwrap_or_default()
                );
                self.expected(node, path, "a latency model", Some(help));
                None
            }
            _ => {
                self.expected(
                    node,
                    path,
                    "a latency model (a mapping with one key, the model)",
                    Some(example.to_owned()),
                );
                None
            }
        }
    }

    fn latency_params(
        &mut self,
        kind: &str,
        key_pos: Pos,
        params: &Node,
        path: &str,
    ) -> Option<LatencyModel> {
        let names: &[&'static str] = match kind {
            "constant" => {
                // The shorthand `{constant: 2}` is the common case for fixed latencies.
                if matches!(params.value, Value::Int(_) | Value::Float(_)) {
                    return self
                        .number(params, path)
                        .map(|ms| LatencyModel::Constant { ms });
                }
                &["ms"]
            }
            "uniform" => &["min_ms", "max_ms"],
            "normal" => &["mean_ms", "std_dev_ms"],
            "lognormal" => &["median_ms", "sigma"],
            "exponential" => &["mean_ms"],
            "pareto" => &["scale_ms", "shape"],
            _ => {
                let message = format!("unknown latency model `{kind}`");
                let help = did_you_mean(kind, "expected one of", &LatencyModel::KINDS);
                self.error(key_pos, path, message, Some(help));
                return None;
            }
        };
        let what = format!("a {kind} latency");
        let fields = self.fields(params, path, &what, names)?;
        let mut values = Vec::with_capacity(names.len());
        for name in names {
            let node = self.required(&fields, name, &what);
            values.push(node.and_then(|node| self.number(node, &fields.path(name))));
        }
        let values: Option<Vec<f64>> = values.into_iter().collect();
        let values = values?;
        let first = *values.first()?;
        let second = values.get(1).copied().unwrap_or_default();
        Some(match kind {
            "constant" => LatencyModel::Constant { ms: first },
            "uniform" => LatencyModel::Uniform {
                min_ms: first,
                max_ms: second,
            },
            "normal" => LatencyModel::Normal {
                mean_ms: first,
                std_dev_ms: second,
            },
            "lognormal" => LatencyModel::LogNormal {
                median_ms: first,
                sigma: second,
            },
            "exponential" => LatencyModel::Exponential { mean_ms: first },
            _ => LatencyModel::Pareto {
                scale_ms: first,
                shape: second,
            },
        })
    }
}
