//! Incident timelines and the scenario library's lessons, each checked on a short real run:
//! the effect a scenario's header promises must show in the traces and the ground truth.

mod incidents;
mod instances;
mod lab;
mod library;
