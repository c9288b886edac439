//! The command line's short form of an arrival model (`--arrival`).
//!
//! | form                          | model                                         |
//! |-------------------------------|-----------------------------------------------|
//! | `constant`, `poisson`         | at `--rate` (or the scenario's rate)          |
//! | `ramp:FROM:TO`                | `ramp:10:200`                                 |
//! | `stages:DUR@RATE,...`         | `stages:30s@100,1m@100,30s@0` (linear)        |
//! | `steps:DUR@RATE,...`          | `steps:10s@50,10s@200` (held rates)           |
//! | `spike:HEIGHT@START+LENGTH`   | `spike:300@20s+5s`: 300/s more from 20 s, 5 s |

use std::time::Duration;

use tracelab_scenario::{ArrivalModel, Ramp, Spike, Stage};

/// Reads `--arrival`'s value.
pub fn parse_arrival(text: &str) -> Result<ArrivalModel, String> {
    let text = text.trim();
    let (kind, params) = text.split_once(':').unwrap_or((text, ""));
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
    let duration = |s: &str| -> Result<Duration, String> {
        humantime::parse_duration(s.trim())
            .map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. 30s or 2m"))
    };
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
        ("constant", "") => Ok(ArrivalModel::Constant),
        ("poisson", "") => Ok(ArrivalModel::Poisson),
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
            "unknown arrival model `{text}`: use constant, poisson, ramp:FROM:TO, \
             stages:DUR@RATE,..., steps:DUR@RATE,... or spike:HEIGHT@START+LENGTH"
        )),
    }
}

#[cfg(test)]
mod tests {
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
}
