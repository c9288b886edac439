//! The command line's forms of an arrival model (`--arrival`).
//!
//! Any model in the YAML form a scenario uses is accepted as it is, read by the scenario
//! reader itself, so a new model needs no code here: `poisson`,
//! `'{ramp: {from: 10, to: 200}}'`, `'{spike: {height: 300, start: 20s, length: 5s}}'`.
//! A few short forms are kept for typing speed:
//!
//! | form                          | model                                         |
//! |-------------------------------|-----------------------------------------------|
//! | `ramp:FROM:TO`                | `ramp:10:200`                                 |
//! | `stages:DUR@RATE,...`         | `stages:30s@100,1m@100,30s@0` (linear)        |
//! | `steps:DUR@RATE,...`          | `steps:10s@50,10s@200` (held rates)           |
//! | `spike:HEIGHT@START+LENGTH`   | `spike:300@20s+5s`: 300/s more from 20 s, 5 s |

use tracelab_scenario::{ArrivalModel, Ramp, Spike, Stage};

/// Reads `--arrival`'s value.
pub fn parse_arrival(text: &str) -> Result<ArrivalModel, String> {
    let text = text.trim();
    match text.split_once(':') {
        Some((kind, params)) if !text.starts_with('{') => short_form(kind, params),
        _ => tracelab_scenario::parse_value(text, "--arrival").map_err(|d| d.to_string()),
    }
}

/// `ramp:10:200` and the like.
fn short_form(kind: &str, params: &str) -> Result<ArrivalModel, String> {
    let number = |s: &str| -> Result<f64, String> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a number of requests per second"))?;
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(format!("`{s}` must be a rate of 0 or more"))
        }
    };
    let duration = tracelab_scenario::parse_duration;
    let stages = |params: &str| -> Result<Vec<Stage>, String> {
        params
            .split(',')
            .map(|stage| {
                let (d, r) = stage
                    .split_once('@')
                    .ok_or_else(|| format!("stage `{stage}`: write DURATION@RATE, e.g. 30s@100"))?;
                Ok(Stage {
                    duration: duration(d)?,
                    rate: number(r)?,
                })
            })
            .collect()
    };
    match (kind, params) {
        ("ramp", p) => {
            let (from, to) = p
                .split_once(':')
                .ok_or("write ramp:FROM:TO, e.g. ramp:10:200")?;
            Ok(ArrivalModel::Ramp(Ramp {
                from: number(from)?,
                to: number(to)?,
            }))
        }
        ("stages", p) if !p.is_empty() => Ok(ArrivalModel::Stages(stages(p)?)),
        ("steps", p) if !p.is_empty() => Ok(ArrivalModel::Steps(stages(p)?)),
        ("spike", p) => {
            let (height, window) = p
                .split_once('@')
                .ok_or("write spike:HEIGHT@START+LENGTH, e.g. spike:300@20s+5s")?;
            let (start, length) = window
                .split_once('+')
                .ok_or("write spike:HEIGHT@START+LENGTH, e.g. spike:300@20s+5s")?;
            Ok(ArrivalModel::Spike(Spike {
                height: number(height)?,
                start: duration(start)?,
                length: duration(length)?,
            }))
        }
        _ => Err(format!(
            "unknown short form `{kind}:{params}`: use ramp:FROM:TO, stages:DUR@RATE,..., \
             steps:DUR@RATE,... or spike:HEIGHT@START+LENGTH, or any model in its YAML form \
             ({}), such as '{{ramp: {{from: 10, to: 200}}}}'",
            ArrivalModel::kinds().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_form_parses() {
        assert_eq!(parse_arrival("poisson"), Ok(ArrivalModel::Poisson));
        assert_eq!(
            parse_arrival("ramp:10:200"),
            Ok(ArrivalModel::Ramp(Ramp {
                from: 10.0,
                to: 200.0
            }))
        );
        assert_eq!(
            parse_arrival("steps:10s@50,1m@200"),
            Ok(ArrivalModel::Steps(vec![
                Stage {
                    duration: Duration::from_secs(10),
                    rate: 50.0
                },
                Stage {
                    duration: Duration::from_secs(60),
                    rate: 200.0
                },
            ]))
        );
        assert_eq!(
            parse_arrival("spike:300@20s+5s"),
            Ok(ArrivalModel::Spike(Spike {
                height: 300.0,
                start: Duration::from_secs(20),
                length: Duration::from_secs(5),
            }))
        );
        for bad in [
            "ramp:10",
            "stages:",
            "spike:3@4",
            "steps:10@5",
            "linear",
            "ramp:-1:3",
        ] {
            assert!(parse_arrival(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_yaml_form_of_any_model_is_read_by_the_scenario_reader() {
        assert_eq!(
            parse_arrival("{ramp: {from: 10, to: 200}}"),
            parse_arrival("ramp:10:200")
        );
        assert_eq!(
            parse_arrival("{steps: [{duration: 1.5s, rate: 50}]}"),
            Ok(ArrivalModel::Steps(vec![Stage {
                duration: Duration::from_millis(1500),
                rate: 50.0
            }]))
        );
        // Short forms read durations like the YAML does.
        assert_eq!(
            parse_arrival("spike:300@1.5s+5s"),
            parse_arrival("{spike: {height: 300, start: 1.5s, length: 5s}}")
        );
        // Mistakes are explained as in a scenario file, with the field and a suggestion.
        let error = parse_arrival("{ramp: {from: 10, too: 200}}").unwrap_err();
        assert!(error.contains("ramp.too: unknown field `too`"), "{error}");
        assert!(error.contains("did you mean `to`?"), "{error}");
        let error = parse_arrival("poison").unwrap_err();
        assert!(error.contains("unknown arrival model `poison`"), "{error}");
        assert!(error.contains("did you mean `poisson`?"), "{error}");
    }
}
