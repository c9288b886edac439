//! Services on real loopback sockets, exporting real OTLP to an embedded receiver: faults
//! switched on and off through the admin API, the span trees of the resource steps, and
//! replicas balanced by their policies.

mod faults;
mod harness;
mod instances;
mod resources;
