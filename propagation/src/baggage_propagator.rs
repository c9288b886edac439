//! [`W3cBaggagePropagator`]: the `baggage` header in and out of OpenTelemetry's
//! [`Baggage`], so the SDK and application code see it through `BaggageExt`.

use opentelemetry::Context;
use opentelemetry::baggage::{Baggage, BaggageExt, BaggageMetadata};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};

use crate::baggage::{self, BaggageMember};

/// Header name of W3C Baggage.
pub const BAGGAGE_HEADER: &str = "baggage";

/// The W3C Baggage propagator. See [`crate::baggage`] for the choices it makes on invalid
/// members, duplicates, properties and limits.
#[derive(Clone, Debug)]
pub struct W3cBaggagePropagator {
    fields: [String; 1],
}

impl Default for W3cBaggagePropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl W3cBaggagePropagator {
    /// A baggage propagator.
    pub fn new() -> Self {
        Self {
            fields: [BAGGAGE_HEADER.to_owned()],
        }
    }
}

impl TextMapPropagator for W3cBaggagePropagator {
    /// Writes the context's baggage, sorted by key. OpenTelemetry's `Baggage` is a hash map
    /// with no order of its own, and a fixed order keeps headers reproducible from run to run.
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let members = members_of(cx.baggage());
        let (header, _dropped) = baggage::render(&members);
        if !header.is_empty() {
            injector.set(BAGGAGE_HEADER, header);
        }
    }

    /// Replaces the context's baggage with the received one. When no valid member arrived the
    /// context is returned unchanged, as the propagator contract asks.
    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let values = extractor.get_all(BAGGAGE_HEADER).unwrap_or_default();
        let parsed = baggage::parse(&values);
        if parsed.members.is_empty() {
            return cx.clone();
        }
        let mut received = Baggage::new();
        for member in parsed.members {
            // `parse` enforced the same limits `insert_with_metadata` checks (and counted
            // encoded bytes, which are never fewer), so no member is refused here.
            received.insert_with_metadata(
                member.key,
                member.value,
                BaggageMetadata::from(baggage::properties_to_metadata(&member.properties)),
            );
        }
        cx.with_baggage(received)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// The context's baggage as wire members, sorted by key.
fn members_of(baggage: &Baggage) -> Vec<BaggageMember> {
    let mut members: Vec<BaggageMember> = baggage
        .iter()
        .map(|(key, (value, metadata))| BaggageMember {
            key: key.as_str().to_owned(),
            value: value.as_str().to_owned(),
            properties: baggage::properties_from_metadata(metadata.as_str()),
        })
        .collect();
    members.sort_by(|a, b| a.key.cmp(&b.key));
    members
}

#[cfg(test)]
mod tests;
