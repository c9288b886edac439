//! A finished request as a worker hands it to the collector, and its line in
//! `requests.jsonl`.
//!
//! A [`Sample`] holds numbers and indices only (the entry, the baggage choices), so a request
//! costs no string until the collector writes its line; the line has exactly the fields of
//! [`RequestRecord`], which is how every reader reads it back.

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::record::Outcome;
use crate::request::{Prepared, SYNTHETIC_BAGGAGE};

/// One request, as measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) sequence: u64,
    pub(crate) entry: u16,
    pub(crate) scheduled_unix_nano: u64,
    /// When the scheduler released it to a connection (the scheduler's own lateness).
    pub(crate) released_unix_nano: u64,
    /// When a worker started sending it (after waiting for a connection).
    pub(crate) start_unix_nano: u64,
    pub(crate) end_unix_nano: u64,
    pub(crate) status: Option<u16>,
    pub(crate) outcome: Outcome,
    pub(crate) trace_id: Option<[u8; 16]>,
    pub(crate) sampled: Option<bool>,
    pub(crate) user: Option<u32>,
    /// The value drawn for each baggage key, as indices.
    pub(crate) baggage: Vec<u16>,
    /// Released when every connection of its target was busy and no other could be opened.
    pub(crate) queued_at_cap: bool,
}

impl Sample {
    /// End minus scheduled: what a user would have waited.
    pub(crate) fn latency_ns(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.scheduled_unix_nano)
    }

    /// Start minus scheduled: how late the request went out.
    pub(crate) fn late_ns(&self) -> u64 {
        self.start_unix_nano
            .saturating_sub(self.scheduled_unix_nano)
    }

    /// Released minus scheduled: how late the scheduler itself was.
    pub(crate) fn schedule_error_ns(&self) -> u64 {
        self.released_unix_nano
            .saturating_sub(self.scheduled_unix_nano)
    }

    /// Appends the sample's line (with its newline) to `out`.
    ///
    /// Written field by field rather than through a derived `Serialize`: an entry's strings
    /// are escaped once per run (`PreparedEntry::json_names`) and the field names are
    /// literals, which cuts the cost of a line to numbers only (it was the load generator's
    /// largest user-space cost after its syscalls). Numbers go through serde_json's own
    /// formatters, so a line stays byte for byte what `RequestRecord` writes (a test holds it).
    pub(crate) fn write_line(
        &self,
        prepared: &Prepared,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        let number = |out: &mut Vec<u8>, value: u64| {
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        };
        let ms = |out: &mut Vec<u8>, ns: u64| write_ms(out, ns);
        out.extend_from_slice(b"{\"sequence\":");
        number(out, self.sequence);
        out.extend_from_slice(b",\"trace_id\":\"");
        if let Some(bytes) = &self.trace_id {
            for b in bytes {
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0x0f)]);
            }
        }
        out.push(b'"');
        out.extend_from_slice(
            prepared.entries[usize::from(self.entry)]
                .json_names
                .as_bytes(),
        );
        out.extend_from_slice(b",\"scheduled_unix_nano\":");
        number(out, self.scheduled_unix_nano);
        out.extend_from_slice(b",\"start_unix_nano\":");
        number(out, self.start_unix_nano);
        out.extend_from_slice(b",\"end_unix_nano\":");
        number(out, self.end_unix_nano);
        out.extend_from_slice(b",\"latency_ms\":");
        ms(out, self.latency_ns())?;
        out.extend_from_slice(b",\"service_time_ms\":");
        ms(out, self.end_unix_nano.saturating_sub(self.start_unix_nano))?;
        out.extend_from_slice(b",\"status\":");
        match self.status {
            Some(code) => number(out, u64::from(code)),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"outcome\":");
        serde_json::to_writer(&mut *out, &self.outcome)?;
        out.extend_from_slice(if self.outcome.is_error() {
            b",\"error\":true"
        } else {
            b",\"error\":false"
        });
        out.extend_from_slice(b",\"late_by_ms\":");
        ms(out, self.late_ns())?;
        match self.sampled {
            Some(true) => out.extend_from_slice(b",\"sampled\":true"),
            Some(false) => out.extend_from_slice(b",\"sampled\":false"),
            None => {}
        }
        if let Some(user) = self.user {
            out.extend_from_slice(b",\"user\":");
            number(out, u64::from(user));
        }
        out.extend_from_slice(b",\"baggage\":");
        serde_json::to_writer(
            &mut *out,
            &Baggage {
                sample: self,
                prepared,
            },
        )?;
        out.extend_from_slice(b"}\n");
        Ok(())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `ns` nanoseconds as milliseconds, byte for byte as serde_json writes the `f64`
/// `ns as f64 / 1e6` (which `RequestRecord` holds).
///
/// From 0.01 ms to 10⁹ ms the digits are written from the integer: the division is correctly
/// rounded, so the `f64` is the double nearest to the decimal `ns / 10⁶`, and that decimal
/// (at most 15 significant digits) is the shortest text that reads back as it, which is what
/// serde_json's float formatter writes, in plain notation in that range. This skips the float
/// formatter, 1.1 % of the load generator's CPU at its maximum rate for three numbers a line.
/// Outside that range the formatter writes it (exponents, `0.0`).
fn write_ms(out: &mut Vec<u8>, ns: u64) -> serde_json::Result<()> {
    if !(10_000..1_000_000_000_000_000).contains(&ns) {
        return serde_json::to_writer(&mut *out, &(ns as f64 / 1e6));
    }
    out.extend_from_slice(itoa::Buffer::new().format(ns / 1_000_000).as_bytes());
    out.push(b'.');
    let fraction = ns % 1_000_000;
    if fraction == 0 {
        out.push(b'0');
        return Ok(());
    }
    let mut digits = [b'0'; 6];
    let mut rest = fraction;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let end = digits
        .iter()
        .rposition(|&d| d != b'0')
        .map_or(1, |last| last + 1);
    out.extend_from_slice(&digits[..end]);
    Ok(())
}

/// The baggage of a sample as a JSON object in key order, the synthetic marker included, as
/// `RequestRecord`'s `BTreeMap` writes it.
struct Baggage<'a> {
    sample: &'a Sample,
    prepared: &'a Prepared,
}

impl Serialize for Baggage<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut members: Vec<(&str, &str)> = self
            .sample
            .baggage
            .iter()
            .enumerate()
            .map(|(key, choice)| self.prepared.baggage_member(key, *choice))
            .collect();
        members.push(SYNTHETIC_BAGGAGE);
        members.sort_unstable_by(|a, b| a.0.cmp(b.0));
        members.dedup_by(|a, b| a.0 == b.0);
        let mut map = serializer.serialize_map(Some(members.len()))?;
        for (key, value) in members {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::RequestRecord;
    use crate::plan::{BaggageSet, Driver, EntryTarget, LoadPlan};
    use tracelab_scenario::ArrivalModel;

    fn prepared() -> Prepared {
        let plan = LoadPlan {
            seed: 3,
            duration: Duration::from_secs(1),
            driver: Driver::Open {
                arrival: ArrivalModel::Constant,
                rate: 1.0,
            },
            entries: vec![EntryTarget {
                service: "front".into(),
                route: "/buy".into(),
                method: "POST".into(),
                weight: 1.0,
                urls: vec!["http://127.0.0.1:9/buy".into()],
                balance: Default::default(),
            }],
            baggage: vec![
                BaggageSet {
                    key: "tenant".into(),
                    values: vec![("acme corp".into(), 1.0), ("globex".into(), 1.0)],
                },
                BaggageSet {
                    key: "plan".into(),
                    values: vec![("gold".into(), 1.0)],
                },
            ],
            connections: None,
            max_in_flight: 10,
        };
        Prepared::new(&plan, None, Duration::from_secs(1)).expect("plan")
    }

    /// The line a sample writes is, byte for byte, what `RequestRecord` would write for the
    /// same request: field names, order, number formats and the baggage object.
    #[test]
    fn a_line_is_exactly_a_request_record() {
        let prepared = prepared();
        let sample = Sample {
            sequence: 41,
            entry: 0,
            scheduled_unix_nano: 1_700_000_000_000_000_000,
            released_unix_nano: 1_700_000_000_000_010_000,
            start_unix_nano: 1_700_000_000_000_250_000,
            end_unix_nano: 1_700_000_000_003_750_000,
            status: Some(503),
            outcome: Outcome::HttpError,
            trace_id: Some([0xab; 16]),
            sampled: Some(true),
            user: None,
            baggage: vec![0, 0],
            queued_at_cap: false,
        };
        let mut line = Vec::new();
        sample.write_line(&prepared, &mut line).expect("written");
        assert_eq!(line.last(), Some(&b'\n'));
        let text = std::str::from_utf8(&line[..line.len() - 1]).expect("utf-8");
        let record: RequestRecord = serde_json::from_str(text).expect("a record");
        assert_eq!(record.trace_id, "ab".repeat(16));
        assert_eq!(record.entry, "front POST /buy");
        assert_eq!(record.latency_ms, 3.75);
        assert_eq!(record.late_by_ms, 0.25);
        assert_eq!(record.baggage["tenant"], "acme corp");
        assert_eq!(record.baggage["plan"], "gold");
        assert_eq!(record.baggage["synthetic_request"], "true");
        assert!(record.error);
        assert_eq!(serde_json::to_string(&record).expect("serialized"), text);
    }

    /// Milliseconds written from the integer are what serde_json writes for the float, across
    /// the range written that way, at its edges, and outside it.
    #[test]
    fn milliseconds_are_written_as_serde_json_writes_them() {
        let mut values: Vec<u64> = vec![
            0,
            1,
            999,
            1_000,
            9_999,
            10_000,
            10_001,
            100_000,
            123_456,
            1_000_000,
            1_500_000,
            3_750_000,
            999_999_999,
            1_000_000_001,
            86_400_000_000_000,
            999_999_999_999_999,
            1_000_000_000_000_000,
            u64::MAX,
        ];
        let mut rng = tracelab_scenario::seed::rng(7, &[b"test/ms"]);
        for _ in 0..200_000 {
            let magnitude = rand::Rng::random_range(&mut rng, 0..60u32);
            values.push(rand::Rng::random::<u64>(&mut rng) >> magnitude);
        }
        for ns in values {
            let mut ours = Vec::new();
            write_ms(&mut ours, ns).expect("written");
            let theirs = serde_json::to_vec(&(ns as f64 / 1e6)).expect("written");
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap(),
                "{ns} ns"
            );
        }
    }
}
