//! Integration tests of the analysis crate on hand-built traces.

mod attribution;
mod bottleneck;
mod critical_path;
mod diff;
mod document;
mod health;
mod html;
mod instances;
mod render;
mod streaming;
mod support;
