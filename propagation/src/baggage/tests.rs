//! Baggage parsing, encoding and limits, one rule per test.

use super::*;

fn member(key: &str, value: &str) -> BaggageMember {
    BaggageMember {
        key: key.to_owned(),
        value: value.to_owned(),
        properties: Vec::new(),
    }
}

fn kv(parsed: &ParsedBaggage) -> Vec<(&str, &str)> {
    parsed
        .members
        .iter()
        .map(|m| (m.key.as_str(), m.value.as_str()))
        .collect()
}

#[test]
fn members_are_parsed_in_order() {
    let parsed = parse(&["userId=alice,serverNode=DF%2028,isProduction=false"]);
    assert_eq!(
        kv(&parsed),
        [
            ("userId", "alice"),
            ("serverNode", "DF 28"),
            ("isProduction", "false")
        ]
    );
    assert!(parsed.rejected.is_empty());
}

#[test]
fn several_headers_are_combined() {
    let parsed = parse(&["a=1", "b=2,c=3"]);
    assert_eq!(kv(&parsed), [("a", "1"), ("b", "2"), ("c", "3")]);
}

#[test]
fn ows_around_members_keys_and_values_is_skipped() {
    let parsed = parse(&[" a = 1 ,\tb\t=\t2\t; p = x ;q "]);
    assert_eq!(kv(&parsed), [("a", "1"), ("b", "2")]);
    assert_eq!(
        parsed.members[1].properties,
        [
            BaggageProperty {
                key: "p".to_owned(),
                value: Some("x".to_owned())
            },
            BaggageProperty {
                key: "q".to_owned(),
                value: None
            }
        ]
    );
}

#[test]
fn empty_members_are_skipped_silently() {
    let parsed = parse(&[",,a=1, ,", ""]);
    assert_eq!(kv(&parsed), [("a", "1")]);
    assert!(parsed.rejected.is_empty());
}

#[test]
fn empty_value_is_valid() {
    let parsed = parse(&["a="]);
    assert_eq!(kv(&parsed), [("a", "")]);
}

#[test]
fn key_is_an_http_token() {
    let parsed = parse(&["a!#$%&'*+-.^_`|~Z9=1,bad key=2,b(x)=3,caf\u{e9}=4"]);
    assert_eq!(kv(&parsed), [("a!#$%&'*+-.^_`|~Z9", "1")]);
    assert_eq!(parsed.rejected.len(), 3);
    assert!(matches!(
        &parsed.rejected[0],
        BaggageError::InvalidKey { found: ' ', .. }
    ));
    assert!(matches!(
        &parsed.rejected[1],
        BaggageError::InvalidKey { found: '(', .. }
    ));
}

#[test]
fn invalid_member_is_skipped_and_the_rest_kept() {
    let parsed = parse(&["a=1,novalue,=2,b=x\"y,c=3"]);
    assert_eq!(kv(&parsed), [("a", "1"), ("c", "3")]);
    assert!(matches!(
        parsed.rejected.as_slice(),
        [
            BaggageError::MissingEquals { .. },
            BaggageError::EmptyKey { .. },
            BaggageError::InvalidValueChar { found: '"', .. }
        ]
    ));
}

#[test]
fn raw_characters_outside_baggage_octet_are_invalid() {
    for raw in ["a b", "a\\b", "caf\u{e9}", "a\tb"] {
        let header = format!("k={raw}");
        let parsed = parse(&[&header]);
        assert!(parsed.members.is_empty(), "{raw:?} must be percent-encoded");
        assert!(matches!(
            parsed.rejected.as_slice(),
            [BaggageError::InvalidValueChar { .. }]
        ));
    }
}

#[test]
fn percent_encoding_is_decoded() {
    let parsed = parse(&["k=hello%20world%2C%3B%25%22,u=caf%C3%A9%E2%9C%93,l=%c3%a9"]);
    assert_eq!(
        kv(&parsed),
        [("k", "hello world,;%\""), ("u", "café✓"), ("l", "é")]
    );
}

#[test]
fn bad_percent_encoding_is_invalid() {
    let parsed = parse(&["a=100%,b=%zz,c=%4,d=ok"]);
    assert_eq!(kv(&parsed), [("d", "ok")]);
    assert_eq!(parsed.rejected.len(), 3);
    assert!(
        parsed
            .rejected
            .iter()
            .all(|e| matches!(e, BaggageError::BadPercentEncoding { .. }))
    );
}

#[test]
fn non_utf8_octets_become_replacement_characters() {
    let parsed = parse(&["k=a%FFb"]);
    assert_eq!(kv(&parsed), [("k", "a\u{fffd}b")]);
}

#[test]
fn spaces_commas_and_unicode_are_percent_encoded() {
    assert_eq!(encode_value("a b"), "a%20b");
    assert_eq!(encode_value("x,y;z"), "x%2Cy%3Bz");
    assert_eq!(encode_value("100%"), "100%25");
    assert_eq!(encode_value("\"q\"\\"), "%22q%22%5C");
    assert_eq!(encode_value("café"), "caf%C3%A9");
    assert_eq!(encode_value("plain-token_1.2~/:?"), "plain-token_1.2~/:?");
}

#[test]
fn encode_then_decode_round_trips() {
    for value in ["", "a b,c;d=e%f", "日本語 ✓", "\u{7f}\u{1}", "tab\there"] {
        let encoded = encode_value(value);
        assert!(encoded.bytes().all(is_baggage_octet), "{encoded}");
        assert_eq!(decode_value(&encoded).as_deref(), Some(value));
    }
}

#[test]
fn properties_are_kept_verbatim() {
    let parsed = parse(&["k=v;flag;ttl=60;enc=a%20b"]);
    let properties = &parsed.members[0].properties;
    assert_eq!(properties_to_metadata(properties), "flag;ttl=60;enc=a%20b");
    let (header, dropped) = render(&parsed.members);
    assert_eq!(header, "k=v;flag;ttl=60;enc=a%20b");
    assert!(dropped.is_empty());
}

#[test]
fn invalid_property_invalidates_its_member() {
    let parsed = parse(&["a=1;bad key,b=2;,c=3;p=x y,d=4"]);
    assert_eq!(kv(&parsed), [("d", "4")]);
    assert_eq!(parsed.rejected.len(), 3);
    assert!(
        parsed
            .rejected
            .iter()
            .all(|e| matches!(e, BaggageError::InvalidProperty { .. }))
    );
}

#[test]
fn duplicated_key_keeps_the_first_value() {
    let parsed = parse(&["a=1,b=2", "a=3"]);
    assert_eq!(kv(&parsed), [("a", "1"), ("b", "2")]);
    assert_eq!(
        parsed.rejected,
        [BaggageError::DuplicateKey {
            key: "a".to_owned()
        }]
    );
}

#[test]
fn at_most_64_members_are_read() {
    let header: Vec<String> = (0..70).map(|i| format!("k{i}=v")).collect();
    let parsed = parse(&[&header.join(",")]);
    assert_eq!(parsed.members.len(), 64);
    assert_eq!(parsed.members[63].key, "k63");
    assert_eq!(parsed.rejected.len(), 6);
    assert!(matches!(
        &parsed.rejected[0],
        BaggageError::TooManyMembers { key } if key == "k64"
    ));
}

#[test]
fn at_most_8192_bytes_are_read() {
    // Two members of 4096 bytes each, plus the comma, is one byte too many for the second.
    let big = "v".repeat(4094);
    let header = format!("a={big},b={big},c=1");
    let parsed = parse(&[&header]);
    assert_eq!(
        parsed
            .members
            .iter()
            .map(|m| m.key.as_str())
            .collect::<Vec<_>>(),
        ["a", "c"]
    );
    assert!(matches!(
        &parsed.rejected[..],
        [BaggageError::TooLarge { key }] if key == "b"
    ));
}

#[test]
fn render_never_exceeds_64_members() {
    let members: Vec<BaggageMember> = (0..100).map(|i| member(&format!("k{i}"), "v")).collect();
    let (header, dropped) = render(&members);
    assert_eq!(header.split(',').count(), 64);
    assert_eq!(dropped.len(), 36);
    assert_eq!(parse(&[&header]).members.len(), 64);
}

#[test]
fn render_never_exceeds_8192_bytes() {
    // Values that grow threefold when encoded: the limit applies to the encoded header.
    let members: Vec<BaggageMember> = (0..10)
        .map(|i| member(&format!("k{i}"), &" ".repeat(400)))
        .collect();
    let (header, dropped) = render(&members);
    assert!(header.len() <= MAX_BYTES, "{}", header.len());
    assert_eq!(header.split(',').count(), 6);
    assert_eq!(dropped.len(), 4);
    let reparsed = parse(&[&header]);
    assert!(reparsed.rejected.is_empty());
    assert_eq!(reparsed.members[0].value, " ".repeat(400));
}

#[test]
fn render_skips_members_that_do_not_fit_but_keeps_smaller_ones() {
    let members = [
        member("big", &"x".repeat(8180)),
        member("huge", &"y".repeat(9000)),
        member("s", "1"),
    ];
    let (header, dropped) = render(&members);
    assert!(header.starts_with("big="));
    assert!(header.len() <= MAX_BYTES);
    assert!(matches!(&dropped[..], [BaggageError::TooLarge { key }, ..] if key == "huge"));
}

#[test]
fn render_drops_invalid_keys_and_properties() {
    let mut with_property = member("ok", "1");
    with_property.properties = vec![
        BaggageProperty {
            key: "good".to_owned(),
            value: None,
        },
        BaggageProperty {
            key: "bad key".to_owned(),
            value: None,
        },
    ];
    let (header, dropped) = render(&[member("bad key", "x"), with_property]);
    assert_eq!(header, "ok=1;good");
    assert!(matches!(&dropped[..], [BaggageError::InvalidKey { .. }]));
}

#[test]
fn round_trip_through_render_and_parse() {
    let original = parse(&["user=J%C3%BCrgen%20M,cart=3%2C4;ttl=5,empty="]);
    let (header, _) = render(&original.members);
    assert_eq!(parse(&[&header]), original);
}

#[test]
fn metadata_string_is_read_into_valid_properties_only() {
    let properties = properties_from_metadata(" a ; b = c ;bad key; ");
    assert_eq!(properties_to_metadata(&properties), "a;b=c");
}
