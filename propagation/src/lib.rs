//! placeholder
pub mod baggage;
pub mod traceparent;
pub mod tracestate;
mod wire;
