//! Generated OTLP/JSON documents: whenever the fast path returns spans, they are the
//! reference reader's.
//!
//! The documents vary what producers vary: field order, lowerCamelCase or original names (and
//! both at once), optional fields left out or `null`, unknown fields, 64-bit numbers as
//! numbers or strings, enums as numbers or names, upper- and lower-case ids, nested attribute
//! values, and the three layouts of a file. Some are meant for the reference reader only (a
//! `kvlistValue`, a short id); the fast path must then give up, not guess.

use proptest::prelude::*;

use super::super::decode;

/// A JSON value as text is written: objects keep their order and may repeat a key.
enum Json {
    /// A number or literal, written as it is.
    Raw(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn write(&self, out: &mut String, pretty: bool, depth: usize) {
        let newline = |out: &mut String, depth: usize| {
            if pretty {
                out.push('\n');
                out.push_str(&"  ".repeat(depth));
            }
        };
        match self {
            Json::Raw(raw) => out.push_str(raw),
            Json::Str(text) => out.push_str(&serde_json::to_string(text).unwrap_or_default()),
            Json::Arr(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    item.write(out, pretty, depth + 1);
                }
                out.push(']');
            }
            Json::Obj(entries) => {
                out.push('{');
                for (index, (key, value)) in entries.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    out.push_str(&serde_json::to_string(key).unwrap_or_default());
                    out.push_str(if pretty { ": " } else { ":" });
                    value.write(out, pretty, depth + 1);
                }
                out.push('}');
            }
        }
    }
}

/// splitmix64: every document replays from its seed, which proptest reports on failure.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// An object under construction.
struct Object<'g> {
    g: &'g mut Gen,
    entries: Vec<(String, Json)>,
}

impl<'g> Object<'g> {
    fn new(g: &'g mut Gen) -> Self {
        Object {
            g,
            entries: Vec::new(),
        }
    }

    /// A field under its lowerCamelCase name, its original name, or both (the original name
    /// then holds another value, which the preferred name must win over), or `null`.
    fn field(&mut self, camel: &str, snake: &str, mut value: impl FnMut(&mut Gen) -> Json) {
        let roll = self.g.below(100);
        if roll < 5 {
            self.entries
                .push((camel.to_owned(), Json::Raw("null".into())));
        } else if roll < 65 || camel == snake {
            let value = value(self.g);
            self.entries.push((camel.to_owned(), value));
        } else if roll < 90 {
            let value = value(self.g);
            self.entries.push((snake.to_owned(), value));
        } else {
            let decoy = value(self.g);
            let value = value(self.g);
            self.entries.push((snake.to_owned(), decoy));
            self.entries.push((camel.to_owned(), value));
        }
    }

    /// Like [`field`](Self::field), but left out some of the time.
    fn optional(&mut self, camel: &str, snake: &str, value: impl FnMut(&mut Gen) -> Json) {
        if self.g.chance(70) {
            self.field(camel, snake, value);
        }
    }

    /// Shuffled, with an unknown field now and then.
    fn finish(mut self) -> Json {
        if self.g.chance(15) {
            let junk = Json::Obj(vec![(
                "x".into(),
                Json::Arr(vec![Json::Raw("1".into()), Json::Str("y".into())]),
            )]);
            self.entries.push(("unknownField".into(), junk));
        }
        let mut entries = self.entries;
        for index in (1..entries.len()).rev() {
            let other = self.g.below(index as u64 + 1) as usize;
            entries.swap(index, other);
        }
        Json::Obj(entries)
    }
}

/// A 64-bit number as a JSON number or a string.
fn uint64(g: &mut Gen) -> Json {
    let value = if g.chance(50) {
        g.below(1_000_000)
    } else {
        g.next()
    };
    if g.chance(50) {
        Json::Str(value.to_string())
    } else {
        Json::Raw(value.to_string())
    }
}

/// A 32-bit count, now and then out of range.
fn uint32(g: &mut Gen) -> Json {
    let value = if g.chance(3) {
        u64::from(u32::MAX) + 1
    } else {
        g.below(300)
    };
    if g.chance(30) {
        Json::Str(value.to_string())
    } else {
        Json::Raw(value.to_string())
    }
}

fn text(g: &mut Gen) -> Json {
    Json::Str(
        g.pick(&[
            "GET /",
            "",
            "é ü",
            "quote \" and \\ slash",
            "tab\tnl\n",
            "x",
        ])
        .into(),
    )
}

/// An id of `bytes` bytes in hex, upper or lower case; now and then a byte short.
fn id(g: &mut Gen, bytes: usize) -> Json {
    let length = if g.chance(3) { bytes - 1 } else { bytes };
    let hex: String = (0..length)
        .map(|_| format!("{:02x}", 1 + g.below(255)))
        .collect();
    Json::Str(if g.chance(30) {
        hex.to_uppercase()
    } else {
        hex
    })
}

fn any_value(g: &mut Gen, depth: usize) -> Json {
    let mut o = Object::new(g);
    let kinds = if depth < 2 { 9 } else { 7 };
    match o.g.below(kinds) {
        0 => {
            o.field("stringValue", "string_value", text);
        }
        1 => {
            o.field("boolValue", "bool_value", |g| {
                Json::Raw(g.pick(&["true", "false"]).into())
            });
        }
        2 => {
            o.field("intValue", "int_value", |g| {
                let raw = g.pick(&["-9007199254740993", "0", "42", "-1", "9223372036854775807"]);
                if g.chance(50) {
                    Json::Str(raw.into())
                } else {
                    Json::Raw(raw.into())
                }
            });
        }
        3 => {
            o.field("doubleValue", "double_value", |g| {
                if g.chance(70) {
                    Json::Raw(g.pick(&["0.5", "-3", "1e300", "7"]).into())
                } else {
                    Json::Str(g.pick(&["NaN", "Infinity", "-Infinity", "2.5"]).into())
                }
            });
        }
        4 => {
            // For the reference reader only.
            o.field("kvlistValue", "kvlist_value", |_| {
                Json::Obj(vec![("values".into(), Json::Arr(Vec::new()))])
            });
        }
        5 => {
            o.field("bytesValue", "bytes_value", |_| Json::Str("AQID".into()));
        }
        6 => {
            // OTLP's empty value: no kind at all.
        }
        _ => {
            o.field("arrayValue", "array_value", |g| {
                let mut array = Object::new(g);
                array.field("values", "values", |g| {
                    let count = g.below(3);
                    Json::Arr((0..count).map(|_| any_value(g, depth + 1)).collect())
                });
                array.finish()
            });
        }
    }
    o.finish()
}

fn attributes(g: &mut Gen) -> Json {
    let count = g.below(4);
    Json::Arr(
        (0..count)
            .map(|_| {
                let mut o = Object::new(g);
                o.field("key", "key", text);
                o.optional("value", "value", |g| any_value(g, 0));
                o.finish()
            })
            .collect(),
    )
}

fn span(g: &mut Gen) -> Json {
    let mut o = Object::new(g);
    o.field("traceId", "trace_id", |g| id(g, 16));
    o.field("spanId", "span_id", |g| id(g, 8));
    o.optional("parentSpanId", "parent_span_id", |g| {
        if g.chance(30) {
            Json::Str(String::new())
        } else {
            id(g, 8)
        }
    });
    o.optional("traceState", "trace_state", |g| {
        Json::Str(g.pick(&["", "ot=th:8", "a=b,c=d"]).into())
    });
    o.optional("flags", "flags", uint32);
    o.optional("name", "name", text);
    o.optional("kind", "kind", |g| {
        if g.chance(50) {
            Json::Raw(g.below(6).to_string())
        } else {
            Json::Str(
                g.pick(&["SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_INTERNAL"])
                    .into(),
            )
        }
    });
    o.optional("startTimeUnixNano", "start_time_unix_nano", uint64);
    o.optional("endTimeUnixNano", "end_time_unix_nano", uint64);
    o.optional("attributes", "attributes", attributes);
    o.optional("droppedAttributesCount", "dropped_attributes_count", uint32);
    o.optional("events", "events", |g| {
        let count = g.below(3);
        Json::Arr(
            (0..count)
                .map(|_| {
                    let mut e = Object::new(g);
                    e.optional("timeUnixNano", "time_unix_nano", uint64);
                    e.optional("name", "name", text);
                    e.optional("attributes", "attributes", attributes);
                    e.optional("droppedAttributesCount", "dropped_attributes_count", uint32);
                    e.finish()
                })
                .collect(),
        )
    });
    o.optional("droppedEventsCount", "dropped_events_count", uint32);
    o.optional("links", "links", |g| {
        let count = g.below(2);
        Json::Arr(
            (0..count)
                .map(|_| {
                    let mut l = Object::new(g);
                    l.field("traceId", "trace_id", |g| id(g, 16));
                    l.field("spanId", "span_id", |g| id(g, 8));
                    l.optional("traceState", "trace_state", text);
                    l.optional("attributes", "attributes", attributes);
                    l.optional("flags", "flags", uint32);
                    l.finish()
                })
                .collect(),
        )
    });
    o.optional("droppedLinksCount", "dropped_links_count", uint32);
    o.optional("status", "status", |g| {
        let mut s = Object::new(g);
        s.optional("message", "message", text);
        s.optional("code", "code", |g| {
            if g.chance(50) {
                Json::Raw(g.below(3).to_string())
            } else {
                Json::Str(
                    g.pick(&["STATUS_CODE_OK", "STATUS_CODE_ERROR", "STATUS_CODE_UNSET"])
                        .into(),
                )
            }
        });
        s.finish()
    });
    o.finish()
}

fn request(g: &mut Gen) -> Json {
    let mut o = Object::new(g);
    o.field("resourceSpans", "resource_spans", |g| {
        let resources = g.below(3);
        Json::Arr((0..resources).map(|_| resource_spans(g)).collect())
    });
    o.finish()
}

fn resource_spans(g: &mut Gen) -> Json {
    let mut r = Object::new(g);
    r.optional("resource", "resource", |g| {
        let mut o = Object::new(g);
        o.optional("attributes", "attributes", attributes);
        o.optional("droppedAttributesCount", "dropped_attributes_count", uint32);
        o.finish()
    });
    r.optional("scopeSpans", "scope_spans", |g| {
        let scopes = g.below(3);
        Json::Arr((0..scopes).map(|_| scope_spans(g)).collect())
    });
    r.optional("schemaUrl", "schema_url", text);
    r.finish()
}

fn scope_spans(g: &mut Gen) -> Json {
    let mut s = Object::new(g);
    s.optional("scope", "scope", |g| {
        let mut o = Object::new(g);
        o.optional("name", "name", text);
        o.optional("version", "version", text);
        o.optional("attributes", "attributes", attributes);
        o.finish()
    });
    s.optional("spans", "spans", |g| {
        let count = g.below(4);
        Json::Arr((0..count).map(|_| span(g)).collect())
    });
    s.optional("schemaUrl", "schema_url", text);
    s.finish()
}

/// A whole file: one request, JSON Lines of requests, or an array of them.
fn document(seed: u64) -> String {
    let mut g = Gen(seed);
    let mut out = String::new();
    match g.below(4) {
        0 => request(&mut g).write(&mut out, false, 0),
        1 => request(&mut g).write(&mut out, true, 0),
        2 => {
            let lines = 1 + g.below(3);
            for _ in 0..lines {
                request(&mut g).write(&mut out, false, 0);
                out.push('\n');
            }
        }
        _ => {
            let count = g.below(3);
            Json::Arr((0..count).map(|_| request(&mut g)).collect()).write(&mut out, false, 0);
        }
    }
    out
}

/// The property: spans from the fast path are the reference reader's.
fn agrees(text: &str) -> Result<bool, String> {
    let Some(fast) = decode(text) else {
        return Ok(false);
    };
    let reference = super::super::super::reference_lines(text)
        .map_err(|error| format!("the fast path read what the reference refuses: {error}"))?;
    // Compared as text: a NaN attribute is not equal to itself.
    if format!("{fast:?}") != format!("{reference:?}") {
        return Err(format!("fast {fast:#?}\nreference {reference:#?}"));
    }
    Ok(true)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn fast_path_spans_are_the_reference_readers(seed in any::<u64>()) {
        let text = document(seed);
        if let Err(problem) = agrees(&text) {
            prop_assert!(false, "{problem}\n{text}");
        }
    }
}

#[test]
fn the_generated_documents_take_both_paths() {
    // The property says nothing about documents the fast path leaves alone, so most of them
    // must be ones it reads, and some ones it must leave.
    let mut fast = 0;
    let seeds = 400;
    for seed in 0..seeds {
        let text = document(seed);
        match agrees(&text) {
            Ok(true) => fast += 1,
            Ok(false) => {}
            Err(problem) => panic!("seed {seed}: {problem}\n{text}"),
        }
    }
    assert!(
        fast > seeds / 3,
        "the fast path read only {fast} of {seeds}"
    );
    assert!(fast < seeds, "the fast path read every document");
}
