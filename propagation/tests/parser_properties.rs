//! Properties every parser must hold for any input, ahead of real fuzzing: no panic, and what
//! is accepted renders to a header that parses back to the same thing.

use proptest::prelude::*;
use tracelab_propagation::{baggage, traceparent, tracestate};

/// Strings biased towards the characters the grammars care about, plus arbitrary Unicode.
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-fA-F\\- \t]{0,70}",
        "[a-z0-9_@*/=, \t%;A-Z.-]{0,120}",
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn traceparent_parse_never_panics_and_round_trips(
        values in prop::collection::vec(header_text(), 0..3)
    ) {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        if let Ok(parsed) = traceparent::parse(&values) {
            let again = traceparent::parse(&[&parsed.to_header()]);
            prop_assert_eq!(again, Ok(traceparent::TraceParent { version: 0, ..parsed }));
        }
    }

    #[test]
    fn valid_traceparents_are_accepted(
        trace_id in any::<[u8; 16]>(),
        parent_id in any::<[u8; 8]>(),
        flags in any::<u8>(),
    ) {
        prop_assume!(trace_id != [0; 16] && parent_id != [0; 8]);
        let header = traceparent::TraceParent { version: 0, trace_id, parent_id, flags };
        prop_assert_eq!(traceparent::parse(&[&header.to_header()]), Ok(header));
    }

    #[test]
    fn tracestate_parse_never_panics_and_round_trips(
        values in prop::collection::vec(header_text(), 0..4)
    ) {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        if let Ok(list) = tracestate::parse(&values) {
            prop_assert!(list.len() <= tracestate::MAX_MEMBERS);
            prop_assert_eq!(tracestate::parse(&[&list.to_header()]), Ok(list));
        }
    }

    #[test]
    fn baggage_parse_never_panics_and_round_trips(
        values in prop::collection::vec(header_text(), 0..4)
    ) {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let parsed = baggage::parse(&values);
        prop_assert!(parsed.members.len() <= baggage::MAX_MEMBERS);
        let (header, dropped) = baggage::render(&parsed.members);
        prop_assert!(header.len() <= baggage::MAX_BYTES);
        let again = baggage::parse(&[&header]);
        prop_assert!(again.rejected.is_empty(), "{:?}", again.rejected);
        if dropped.is_empty() {
            prop_assert_eq!(again.members, parsed.members);
        }
    }

    #[test]
    fn baggage_values_survive_encoding(value in any::<String>()) {
        let encoded = baggage::encode_value(&value);
        prop_assert_eq!(baggage::decode_value(&encoded), Some(value));
    }
}
