//! Services on real loopback sockets, exporting real OTLP to an embedded receiver: faults
//! switched on and off through the admin API, and the span trees of the resource steps.

mod faults;
mod harness;
mod resources;
