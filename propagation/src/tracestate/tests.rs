//! One test per `tracestate` rule, named after the rule.

use super::*;

fn keys(list: &TraceStateList) -> Vec<&str> {
    list.members().iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn valid_list_keeps_members_in_order() {
    let list = parse(&["congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"]).expect("valid");
    assert_eq!(keys(&list), ["congo", "rojo"]);
    assert_eq!(list.get("rojo"), Some("00f067aa0ba902b7"));
}

#[test]
fn several_headers_are_combined_in_order() {
    let list = parse(&["a=1,b=2", "c=3", "d=4"]).expect("valid");
    assert_eq!(keys(&list), ["a", "b", "c", "d"]);
    assert_eq!(list.to_header(), "a=1,b=2,c=3,d=4");
}

#[test]
fn empty_members_are_skipped() {
    let list = parse(&[",a=1,,,b=2,", "", " , "]).expect("valid");
    assert_eq!(keys(&list), ["a", "b"]);
    assert_eq!(parse(&[""]), Ok(TraceStateList::new()));
}

#[test]
fn ows_around_members_is_skipped() {
    let list = parse(&[" \ta=1 ,\tb=2\t, c=3 "]).expect("valid");
    assert_eq!(list.to_header(), "a=1,b=2,c=3");
}

#[test]
fn at_most_32_members() {
    let members: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
    let joined = members.join(",");
    assert_eq!(parse(&[&joined]).map(|l| l.len()), Ok(32));

    let over = format!("{joined},k32=v");
    assert_eq!(
        parse(&[&over]),
        Err(TraceStateError::TooManyMembers { count: 33 })
    );
    // The limit counts the combined list, not each header.
    assert_eq!(
        parse(&[&joined, "extra=v"]),
        Err(TraceStateError::TooManyMembers { count: 33 })
    );
}

#[test]
fn key_may_hold_lowercase_digits_and_specials() {
    for key in [
        "a",
        "0",
        "foo_bar-baz*/x",
        "9abc",
        "a@b",
        "foo@",
        "foo@@bar",
    ] {
        assert!(validate_key(key).is_ok(), "{key} should be valid");
    }
    let list = parse(&["foo@=1,foo@@bar=2,a/b*c-d_e=3"]).expect("valid");
    assert_eq!(keys(&list), ["foo@", "foo@@bar", "a/b*c-d_e"]);
}

#[test]
fn key_after_at_is_not_limited_to_14_characters() {
    // Level 1 allowed at most 14 characters after '@'; Level 2 dropped the tenant@system split.
    let key = format!("t@{}", "a".repeat(15));
    assert_eq!(key.len(), 17);
    let header = format!("{key}=v");
    assert_eq!(parse(&[&header]).map(|l| l.len()), Ok(1));
}

#[test]
fn key_must_not_start_with_at() {
    assert_eq!(
        parse(&["@foo=1"]),
        Err(TraceStateError::InvalidKeyStart {
            key: "@foo".to_owned()
        })
    );
}

#[test]
fn key_must_start_with_lowercase_letter_or_digit() {
    for key in ["_foo", "-foo", "*foo", "/foo"] {
        assert!(
            matches!(
                validate_key(key),
                Err(TraceStateError::InvalidKeyStart { .. })
            ),
            "{key}"
        );
    }
}

#[test]
fn key_must_be_lowercase() {
    assert!(matches!(
        parse(&["FOO=1"]),
        Err(TraceStateError::InvalidKeyStart { .. })
    ));
    assert_eq!(
        parse(&["fOO=1"]),
        Err(TraceStateError::InvalidKeyChar {
            key: "fOO".to_owned(),
            found: 'O'
        })
    );
}

#[test]
fn key_must_not_contain_other_characters() {
    assert_eq!(
        parse(&["foo.bar=1"]),
        Err(TraceStateError::InvalidKeyChar {
            key: "foo.bar".to_owned(),
            found: '.'
        })
    );
    assert!(matches!(
        parse(&["foo bar=1"]),
        Err(TraceStateError::InvalidKeyChar { found: ' ', .. })
    ));
}

#[test]
fn key_is_1_to_256_characters() {
    let longest = "k".repeat(256);
    assert_eq!(parse(&[&format!("{longest}=v")]).map(|l| l.len()), Ok(1));
    let too_long = "k".repeat(257);
    assert!(matches!(
        parse(&[&format!("{too_long}=v")]),
        Err(TraceStateError::KeyTooLong { len: 257, .. })
    ));
    assert!(matches!(
        parse(&["=v"]),
        Err(TraceStateError::EmptyKey { .. })
    ));
}

#[test]
fn member_needs_an_equals_sign() {
    assert!(matches!(
        parse(&["a=1,novalue"]),
        Err(TraceStateError::MissingEquals { member }) if member == "novalue"
    ));
}

#[test]
fn value_is_1_to_256_characters() {
    let longest = "v".repeat(256);
    assert_eq!(parse(&[&format!("k={longest}")]).map(|l| l.len()), Ok(1));
    let too_long = "v".repeat(257);
    assert!(matches!(
        parse(&[&format!("k={too_long}")]),
        Err(TraceStateError::ValueTooLong { len: 257, .. })
    ));
    assert!(matches!(
        parse(&["k="]),
        Err(TraceStateError::EmptyValue { .. })
    ));
    // Spaces after '=' are trimmed with the member, leaving nothing.
    assert!(matches!(
        parse(&["k=   "]),
        Err(TraceStateError::EmptyValue { .. })
    ));
}

#[test]
fn value_is_printable_ascii_without_comma_or_equals() {
    let all_printable: String = (0x20u8..=0x7e)
        .map(char::from)
        .filter(|c| *c != ',' && *c != '=')
        .collect();
    let header = format!("k=x{all_printable}");
    assert_eq!(
        parse(&[&header])
            .ok()
            .and_then(|l| l.get("k").map(str::to_owned)),
        Some(format!("x{all_printable}"))
    );
    assert!(matches!(
        parse(&["k=a=b"]),
        Err(TraceStateError::InvalidValueChar { found: '=', .. })
    ));
    assert!(matches!(
        parse(&["k=a\tb"]),
        Err(TraceStateError::InvalidValueChar { found: '\t', .. })
    ));
    assert!(matches!(
        parse(&["k=caf\u{e9}"]),
        Err(TraceStateError::InvalidValueChar {
            found: '\u{e9}',
            ..
        })
    ));
    assert!(matches!(
        parse(&["k=a\u{7f}"]),
        Err(TraceStateError::InvalidValueChar { .. })
    ));
}

#[test]
fn value_may_contain_inner_and_leading_spaces() {
    // The grammar is `0*255(chr) nblk-chr` with chr including space: only the last
    // character must not be a space.
    let list = parse(&["k= a b"]).expect("valid");
    assert_eq!(list.get("k"), Some(" a b"));
}

#[test]
fn value_has_no_trailing_space() {
    assert_eq!(
        validate_value("k", "bar "),
        Err(TraceStateError::TrailingSpace {
            key: "k".to_owned()
        })
    );
    // In a header the trailing space is white space around the member and is trimmed.
    assert_eq!(
        parse(&["k=bar  "])
            .ok()
            .and_then(|l| l.get("k").map(str::to_owned)),
        Some("bar".to_owned())
    );
    // A list built for sending drops such a member rather than sending it.
    let list = TraceStateList::from_members([("k", "bar "), ("ok", "1")]);
    assert_eq!(list.to_header(), "ok=1");
}

#[test]
fn any_invalid_member_invalidates_the_whole_list() {
    assert!(parse(&["a=1,b=2,C=3,d=4"]).is_err());
    assert!(parse(&["a=1", "b=2,@c=3"]).is_err());
}

#[test]
fn duplicated_key_keeps_the_first_entry() {
    let list = parse(&["a=1,b=2,a=3"]).expect("duplicates do not invalidate the list");
    assert_eq!(list.to_header(), "a=1,b=2");
    assert_eq!(list.get("a"), Some("1"));
}

#[test]
fn output_joins_members_in_order_with_commas() {
    let list = parse(&[" z=1 , y=2", "x=3 "]).expect("valid");
    assert_eq!(list.to_header(), "z=1,y=2,x=3");
}

#[test]
fn output_never_has_more_than_32_members() {
    let list = TraceStateList::from_members((0..40).map(|i| (format!("k{i}"), "v")));
    assert_eq!(list.len(), 32);
    assert_eq!(list.members()[31].0, "k31");
}

#[test]
fn error_messages_quote_long_input_briefly() {
    let too_long = "k".repeat(300);
    let message = parse(&[&format!("{too_long}=v")]).unwrap_err().to_string();
    assert!(message.contains("300 characters"), "{message}");
    assert!(message.len() < 150, "{message}");
}
