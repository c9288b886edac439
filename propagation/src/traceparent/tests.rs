//! One test per `traceparent` rule, named after the rule.

use super::*;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn header(version: &str, trace_id: &str, parent_id: &str, flags: &str) -> String {
    format!("{version}-{trace_id}-{parent_id}-{flags}")
}

#[test]
fn valid_header_is_parsed_into_its_fields() {
    let parsed = parse(&[VALID]).expect("valid header");
    assert_eq!(parsed.version, 0);
    assert_eq!(parsed.trace_id[0], 0x4b);
    assert_eq!(parsed.trace_id[15], 0x36);
    assert_eq!(
        parsed.parent_id,
        [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
    );
    assert_eq!(parsed.flags, 0x01);
    assert!(parsed.is_sampled());
    assert!(!parsed.is_random());
}

#[test]
fn hex_must_be_lowercase() {
    let upper_trace = header("00", &TRACE_ID.to_uppercase(), PARENT_ID, "01");
    assert!(matches!(
        parse(&[&upper_trace]),
        Err(TraceParentError::InvalidTraceId { .. })
    ));
    let upper_parent = header("00", TRACE_ID, "00F067AA0BA902B7", "01");
    assert!(matches!(
        parse(&[&upper_parent]),
        Err(TraceParentError::InvalidParentId { .. })
    ));
    let upper_flags = header("00", TRACE_ID, PARENT_ID, "0A");
    assert!(matches!(
        parse(&[&upper_flags]),
        Err(TraceParentError::InvalidFlags { .. })
    ));
    let upper_version = header("0A", TRACE_ID, PARENT_ID, "01");
    assert!(matches!(
        parse(&[&upper_version]),
        Err(TraceParentError::InvalidVersion { .. })
    ));
}

#[test]
fn version_ff_is_invalid() {
    let value = header("ff", TRACE_ID, PARENT_ID, "01");
    assert_eq!(parse(&[&value]), Err(TraceParentError::ForbiddenVersion));
}

#[test]
fn version_must_be_hex() {
    let value = header("0g", TRACE_ID, PARENT_ID, "01");
    assert!(matches!(
        parse(&[&value]),
        Err(TraceParentError::InvalidVersion { found }) if found == "0g"
    ));
}

#[test]
fn version_00_is_exactly_55_characters() {
    assert_eq!(VALID.len(), 55);
    let longer = format!("{VALID}-extra");
    assert_eq!(
        parse(&[&longer]),
        Err(TraceParentError::Version00Length { len: 61 })
    );
    let shorter = &VALID[..54];
    assert_eq!(
        parse(&[shorter]),
        Err(TraceParentError::TooShort { len: 54 })
    );
}

#[test]
fn higher_version_is_parsed_by_its_first_four_fields() {
    let value = header("cc", TRACE_ID, PARENT_ID, "03");
    let parsed = parse(&[&value]).expect("a future version with exactly four fields");
    assert_eq!(parsed.version, 0xcc);
    assert_eq!(parsed.flags, 0x03);
}

#[test]
fn higher_version_accepts_extra_data_only_after_a_dash() {
    let base = header("cc", TRACE_ID, PARENT_ID, "01");
    let with_field = format!("{base}-what-the-future-will-be-like");
    assert_eq!(parse(&[&with_field]).map(|p| p.version), Ok(0xcc));
    let just_dash = format!("{base}-");
    assert_eq!(parse(&[&just_dash]).map(|p| p.version), Ok(0xcc));

    let glued = format!("{base}X");
    assert_eq!(
        parse(&[&glued]),
        Err(TraceParentError::InvalidExtraData {
            version: 0xcc,
            found: 'X'
        })
    );
    let glued_field = format!("{base}.future");
    assert!(matches!(
        parse(&[&glued_field]),
        Err(TraceParentError::InvalidExtraData { .. })
    ));
}

#[test]
fn higher_version_shorter_than_55_is_invalid() {
    let value = header("01", TRACE_ID, PARENT_ID, "0");
    assert_eq!(
        parse(&[&value]),
        Err(TraceParentError::TooShort { len: 54 })
    );
}

#[test]
fn fields_are_separated_by_dashes() {
    let value = VALID.replacen('-', "_", 1);
    assert_eq!(
        parse(&[&value]),
        Err(TraceParentError::MissingSeparator {
            after: "version",
            position: 2,
            found: '_'
        })
    );
    let mut bytes = VALID.as_bytes().to_vec();
    bytes[52] = b'.';
    let value = String::from_utf8(bytes).expect("ascii");
    assert!(matches!(
        parse(&[&value]),
        Err(TraceParentError::MissingSeparator {
            after: "parent-id",
            ..
        })
    ));
}

#[test]
fn trace_id_is_32_hex() {
    // 31 hex digits plus an extra character in the parent-id keeps the total length at 55, so
    // the width check of the trace-id itself is what must fail.
    let value = header("00", &TRACE_ID[..31], "000f067aa0ba902b7", "01");
    assert_eq!(value.len(), 55);
    assert!(matches!(
        parse(&[&value]),
        Err(TraceParentError::MissingSeparator {
            after: "trace-id",
            ..
        })
    ));
    let not_hex = header("00", "4bf92f3577b34da6a3ce929d0e0e473z", PARENT_ID, "01");
    assert!(matches!(
        parse(&[&not_hex]),
        Err(TraceParentError::InvalidTraceId { found }) if found.ends_with('z')
    ));
}

#[test]
fn trace_id_is_not_all_zero() {
    let value = header("00", &"0".repeat(32), PARENT_ID, "01");
    assert_eq!(parse(&[&value]), Err(TraceParentError::ZeroTraceId));
}

#[test]
fn parent_id_is_16_hex() {
    let value = header("00", TRACE_ID, "00f067aa0ba902b", "001");
    assert_eq!(value.len(), 55);
    assert!(matches!(
        parse(&[&value]),
        Err(TraceParentError::MissingSeparator {
            after: "parent-id",
            ..
        })
    ));
    let not_hex = header("00", TRACE_ID, "00f067aa0ba902bx", "01");
    assert!(matches!(
        parse(&[&not_hex]),
        Err(TraceParentError::InvalidParentId { .. })
    ));
}

#[test]
fn parent_id_is_not_all_zero() {
    let value = header("00", TRACE_ID, &"0".repeat(16), "01");
    assert_eq!(parse(&[&value]), Err(TraceParentError::ZeroParentId));
}

#[test]
fn flags_are_2_hex() {
    let value = header("00", TRACE_ID, PARENT_ID, "0x");
    assert_eq!(
        parse(&[&value]),
        Err(TraceParentError::InvalidFlags {
            found: "0x".to_owned()
        })
    );
    // Unknown bits are accepted on input; they are dropped when the header is passed on.
    let unknown = header("00", TRACE_ID, PARENT_ID, "ff");
    assert_eq!(parse(&[&unknown]).map(|p| p.flags), Ok(0xff));
}

#[test]
fn ows_around_the_value_is_trimmed() {
    let padded = format!(" \t {VALID}\t  ");
    assert_eq!(parse(&[&padded]), parse(&[VALID]));
    assert!(parse(&[&padded]).is_ok());
    // Other white space is not OWS and stays part of the value.
    let newline = format!("{VALID}\n");
    assert!(parse(&[&newline]).is_err());
}

#[test]
fn more_than_one_header_is_invalid() {
    assert_eq!(
        parse(&[VALID, VALID]),
        Err(TraceParentError::Repeated { count: 2 })
    );
}

#[test]
fn missing_header_is_reported() {
    assert_eq!(parse(&[]), Err(TraceParentError::Missing));
}

#[test]
fn non_ascii_input_is_rejected_without_panicking() {
    // A multi-byte character straddling the field boundaries must not make the parser slice
    // inside a character.
    let value = format!("00-{}é-{PARENT_ID}-01", &TRACE_ID[..30]);
    assert!(matches!(
        parse(&[&value]),
        Err(TraceParentError::NonAscii { position: 33 })
    ));
}

#[test]
fn outgoing_version_is_always_00() {
    let future = header("cc", TRACE_ID, PARENT_ID, "03");
    let parsed = parse(&[&future]).expect("valid future version");
    let rendered = parsed.to_header();
    assert_eq!(rendered, header("00", TRACE_ID, PARENT_ID, "03"));
    assert_eq!(parse(&[&rendered]).map(|p| p.version), Ok(0));
}

#[test]
fn to_header_round_trips() {
    let parsed = parse(&[VALID]).expect("valid header");
    assert_eq!(parsed.to_header(), VALID);
}

#[test]
fn error_messages_name_the_problem() {
    let message = parse(&[VALID, VALID]).unwrap_err().to_string();
    assert!(message.contains("2 traceparent headers"), "{message}");
    let zero = header("00", &"0".repeat(32), PARENT_ID, "01");
    let message = parse(&[&zero]).unwrap_err().to_string();
    assert!(message.contains("trace-id is all zeros"), "{message}");
}
