//! One request: its draws (entry, baggage), its root span, its headers, its send, its sample.
//!
//! Everything a request repeats — the entry's method, path and `Host` line, each baggage
//! member's wire form, the label of its entry, the first part of its random stream's name — is
//! built once per run in [`Prepared`]. A request writes its header lines into its worker's
//! buffer, so it allocates nothing of its own but its span and the baggage choices it records.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use rand_distr::Distribution;
use rand_distr::weighted::WeightedIndex;
use tokio::time::Instant;
use tracelab_propagation::LineInjector;
use tracelab_scenario::balance::{self, Balancer};
use tracelab_scenario::{Balance, seed};
use tracelab_telemetry::ServiceTelemetry;

use crate::plan::{LoadPlan, PlanError, Target};
use crate::record::Outcome;
use crate::sample::Sample;
use crate::transport::{Answer, Connection, Outgoing, Transport};

/// Header line carrying the request's sequence number to the services (see
/// `tracelab-services`' `origin` module): it seeds every random draw downstream. The number
/// and a `:` follow.
const ORIGIN_LINE: &[u8] = b"tracelab-origin: ";

/// The baggage every generated request carries, so that faults and analyses can tell
/// generated traffic from any other.
pub const SYNTHETIC_BAGGAGE: (&str, &str) = ("synthetic_request", "true");

/// Maps an instant of this run to nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) origin: Instant,
    pub(crate) origin_unix_nano: u64,
}

impl Clock {
    pub(crate) fn now() -> Self {
        let origin_unix_nano = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Clock {
            origin: Instant::now(),
            origin_unix_nano,
        }
    }

    pub(crate) fn unix_nano(&self, at: Instant) -> u64 {
        self.origin_unix_nano + at.saturating_duration_since(self.origin).as_nanos() as u64
    }
}

/// A request due at an instant.
#[derive(Debug, Clone)]
pub(crate) struct Ticket {
    pub(crate) sequence: u64,
    /// The entry drawn for it (an index into the plan's entries).
    pub(crate) entry: u16,
    /// The value drawn for each baggage key (indices into each key's values).
    pub(crate) baggage: Vec<u16>,
    /// The instance of the entry's service it goes to (an index into the entry's instances).
    pub(crate) instance: u16,
    /// When it was due: its latency is measured from here.
    pub(crate) scheduled: Instant,
    /// When the scheduler released it; the gap to `scheduled` is the scheduler's own error.
    pub(crate) released: Instant,
    /// Whether every connection of its target was busy and none could be added when it was
    /// released: a wait for a connection follows.
    pub(crate) queued_at_cap: bool,
    /// The closed-loop user that sends it; `None` in open loop.
    pub(crate) user: Option<u32>,
}

/// One entry, ready to send.
#[derive(Debug)]
pub(crate) struct PreparedEntry {
    /// Where the entry's service is: its first (often only) instance, then the others.
    first: EntryInstance,
    others: Vec<EntryInstance>,
    /// How the entry's requests spread over the instances.
    balancer: Balancer,
    /// The baggage key of a `sticky` policy, as an index into the run's baggage draws; `None`
    /// when the policy is another or no request carries the key.
    sticky: Option<usize>,
    method: http::Method,
    path: http::Uri,
    span_name: String,
    pub(crate) label: String,
    route: String,
    service: String,
    /// `,"entry":…,"service":…,"route":…` as a `requests.jsonl` line writes them, escaped
    /// once here rather than once per request.
    pub(crate) json_names: String,
}

impl PreparedEntry {
    /// Instance `index` of the entry's service (the first one for an index beyond them).
    fn instance(&self, index: u16) -> &EntryInstance {
        match usize::from(index).checked_sub(1) {
            None => &self.first,
            Some(other) => self.others.get(other).unwrap_or(&self.first),
        }
    }

    fn instance_count(&self) -> usize {
        1 + self.others.len()
    }
}

/// One instance of an entry's service.
#[derive(Debug)]
struct EntryInstance {
    /// Its target (an index into the run's targets, each with its own connections).
    target: usize,
    /// `host: …\r\n`.
    host_line: Vec<u8>,
    url: String,
}

/// One baggage key with its weighted values, each also in its wire form `key=value`.
#[derive(Debug)]
struct BaggageDraw {
    key: String,
    values: Vec<String>,
    members: Vec<String>,
    choice: WeightedIndex<f64>,
}

/// What every request of a run shares, built once.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) entries: Vec<PreparedEntry>,
    pub(crate) targets: Vec<Target>,
    entry_choice: WeightedIndex<f64>,
    baggage: Vec<BaggageDraw>,
    /// The random streams of the requests, `loadgen/request` already mixed in.
    streams: seed::Streams,
    pub(crate) timeout: Duration,
    pub(crate) clock: Clock,
    telemetry: Option<ServiceTelemetry>,
    /// The trace-context propagator only: baggage is written directly from the prepared
    /// members, which is the same header without a per-request `Context` of baggage.
    propagator: tracelab_propagation::W3cTraceContextPropagator,
}

impl Prepared {
    pub(crate) fn new(
        plan: &LoadPlan,
        telemetry: Option<ServiceTelemetry>,
        timeout: Duration,
    ) -> Result<Self, PlanError> {
        let invalid = |e: rand_distr::weighted::Error| PlanError::Invalid(e.to_string());
        let entry_choice =
            WeightedIndex::new(plan.entries.iter().map(|e| e.weight)).map_err(invalid)?;
        let mut targets: Vec<Target> = Vec::new();
        let mut entries = Vec::new();
        for entry in &plan.entries {
            let mut instances = Vec::new();
            let mut path = None;
            for url in &entry.urls {
                let (target, own_path) = Target::of_url(url)?;
                let index = match targets.iter().position(|t| t.authority == target.authority) {
                    Some(index) => index,
                    None => {
                        targets.push(target);
                        targets.len() - 1
                    }
                };
                let host = HeaderValue::from_str(&targets[index].authority)
                    .map_err(|_| PlanError::Invalid(format!("bad host in `{url}`")))?;
                instances.push(EntryInstance {
                    target: index,
                    host_line: [b"host: ", host.as_bytes(), b"\r\n"].concat(),
                    url: url.clone(),
                });
                path.get_or_insert(own_path);
            }
            let path = path.ok_or_else(|| {
                PlanError::Invalid(format!("entry `{}` has no URL", entry.label()))
            })?;
            let count = instances.len();
            let mut instances = instances.into_iter();
            let first = instances.next().ok_or_else(|| {
                PlanError::Invalid(format!("entry `{}` has no URL", entry.label()))
            })?;
            let sticky = match &entry.balance {
                Balance::Sticky(key) => plan.baggage.iter().position(|set| set.key == *key),
                Balance::RoundRobin | Balance::Random | Balance::LeastRequests => None,
            };
            entries.push(PreparedEntry {
                balancer: Balancer::new(entry.balance.clone(), plan.seed, &entry.service, count),
                first,
                others: instances.collect(),
                sticky,
                method: http::Method::from_bytes(entry.method.as_bytes()).map_err(|_| {
                    PlanError::Invalid(format!("`{}` is not an HTTP method", entry.method))
                })?,
                path,
                span_name: format!("{} {}", entry.method, entry.route),
                label: entry.label(),
                route: entry.route.clone(),
                service: entry.service.clone(),
                json_names: json_names(&entry.label(), &entry.service, &entry.route),
            });
        }
        let mut baggage = Vec::new();
        for set in &plan.baggage {
            baggage.push(BaggageDraw {
                key: set.key.clone(),
                values: set.values.iter().map(|(v, _)| v.clone()).collect(),
                members: set
                    .values
                    .iter()
                    .map(|(v, _)| {
                        format!(
                            "{}={}",
                            set.key,
                            tracelab_propagation::baggage::encode_value(v)
                        )
                    })
                    .collect(),
                choice: WeightedIndex::new(set.values.iter().map(|(_, w)| *w)).map_err(invalid)?,
            });
        }
        Ok(Prepared {
            entries,
            targets,
            entry_choice,
            baggage,
            streams: seed::Streams::new(plan.seed, &[b"loadgen/request"]),
            timeout,
            clock: Clock::now(),
            telemetry,
            propagator: Default::default(),
        })
    }

    /// The random stream of request `sequence`: the draws of a request do not depend on which
    /// requests were sent before it or in which order.
    fn draws(&self, sequence: u64) -> seed::DrawRng {
        self.streams.rng(&[&sequence.to_le_bytes()])
    }

    /// The ticket of request `sequence`, due at `scheduled` and released at `released`: its
    /// entry (the first draw of its stream), its baggage choices (the draws after it, as
    /// indices into each key's values), and its entry's instance.
    pub(crate) fn ticket(
        &self,
        sequence: u64,
        scheduled: Instant,
        released: Instant,
        user: Option<u32>,
    ) -> Ticket {
        let mut rng = self.draws(sequence);
        let entry = self.entry_choice.sample(&mut rng) as u16;
        let baggage = self
            .baggage
            .iter()
            .map(|b| b.choice.sample(&mut rng) as u16)
            .collect::<Vec<_>>();
        Ticket {
            sequence,
            entry,
            instance: self.instance_of(entry, sequence, &baggage),
            baggage,
            scheduled,
            released,
            queued_at_cap: false,
            user,
        }
    }

    /// The instance of its entry's service request `sequence` (with these baggage choices)
    /// goes to, by the service's balancing policy: the load generator is the first caller of
    /// every trace.
    fn instance_of(&self, entry: u16, sequence: u64, baggage: &[u16]) -> u16 {
        let entry = &self.entries[usize::from(entry)];
        if entry.instance_count() < 2 {
            return 0;
        }
        let sticky = match entry.sticky {
            Some(key) => baggage
                .get(key)
                .map(|&choice| self.baggage[key].values[usize::from(choice)].as_str()),
            None => None,
        };
        let chosen = entry.balancer.choose(&balance::Call {
            caller: "loadgen",
            site: &entry.route,
            sequence: Some(sequence),
            sticky,
        });
        u16::try_from(chosen).unwrap_or(0)
    }

    /// The target (connection pool) of an entry's instance.
    pub(crate) fn target_of(&self, entry: u16, instance: u16) -> usize {
        self.entries[usize::from(entry)].instance(instance).target
    }

    /// The `baggage` header line of a request with these choices. Its members were encoded
    /// when the run was prepared, and the scenario's keys are tokens.
    fn write_baggage_line(&self, head: &mut Vec<u8>, choices: &[u16]) {
        head.extend_from_slice(tracelab_propagation::BAGGAGE_HEADER.as_bytes());
        head.extend_from_slice(b": ");
        for (draw, choice) in self.baggage.iter().zip(choices) {
            head.extend_from_slice(draw.members[usize::from(*choice)].as_bytes());
            head.push(b',');
        }
        head.extend_from_slice(SYNTHETIC_BAGGAGE.0.as_bytes());
        head.push(b'=');
        head.extend_from_slice(SYNTHETIC_BAGGAGE.1.as_bytes());
        head.extend_from_slice(b"\r\n");
    }

    /// A request dropped at the in-flight cap: never sent, recorded at its scheduled instant.
    pub(crate) fn dropped(&self, ticket: Ticket) -> Sample {
        let at = self.clock.unix_nano(ticket.scheduled);
        Sample {
            sequence: ticket.sequence,
            entry: ticket.entry,
            scheduled_unix_nano: at,
            released_unix_nano: at,
            start_unix_nano: at,
            end_unix_nano: at,
            status: None,
            outcome: Outcome::Dropped,
            trace_id: None,
            sampled: None,
            user: ticket.user,
            baggage: ticket.baggage,
            queued_at_cap: false,
        }
    }

    /// Sends the request of `ticket`, starting at `started`, over `connection` (opening one
    /// to its target when there is none or it broke); its sample, and when it ended. `head`
    /// is the worker's buffer for the request's header lines.
    pub(crate) async fn execute<T: Transport>(
        &self,
        transport: &Arc<T>,
        ticket: Ticket,
        started: Instant,
        connection: &mut Option<T::Connection>,
        head: &mut Vec<u8>,
    ) -> (Sample, Instant) {
        let entry = &self.entries[usize::from(ticket.entry)];
        let instance = entry.instance(ticket.instance);
        // Counted from here to the answer, for the `least_requests` policy.
        let _in_flight = entry.balancer.start(usize::from(ticket.instance));

        head.clear();
        head.extend_from_slice(&instance.host_line);
        let cx = self.telemetry.as_ref().map(|telemetry| {
            let tracer = telemetry.tracer();
            let span = tracer
                .span_builder(entry.span_name.clone())
                .with_kind(SpanKind::Client)
                .with_attributes([
                    KeyValue::new("http.request.method", entry.method.to_string()),
                    KeyValue::new("url.full", instance.url.clone()),
                    KeyValue::new("url.template", entry.route.clone()),
                    KeyValue::new("peer.service", entry.service.clone()),
                    KeyValue::new("tracelab.sequence", ticket.sequence as i64),
                ])
                .start(tracer);
            let cx = Context::new().with_span(span);
            self.propagator
                .inject_context(&cx, &mut LineInjector(&mut *head));
            cx
        });
        self.write_baggage_line(head, &ticket.baggage);
        head.extend_from_slice(ORIGIN_LINE);
        head.extend_from_slice(itoa::Buffer::new().format(ticket.sequence).as_bytes());
        head.extend_from_slice(b":\r\n");

        let outgoing = Outgoing {
            method: &entry.method,
            path: &entry.path,
            headers: head,
        };
        let (answer, ended) = match connection {
            Some(open) if open.is_usable(started) => {
                open.send(outgoing, started + self.timeout).await
            }
            _ => match transport.connect(&self.targets[instance.target]).await {
                Ok(mut open) => {
                    // The timeout bounds the exchange, as on an open connection.
                    let sent = open.send(outgoing, Instant::now() + self.timeout).await;
                    *connection = Some(open);
                    sent
                }
                Err(answer) => {
                    *connection = None;
                    (answer, Instant::now())
                }
            },
        };
        let (status, outcome) = match answer {
            Answer::Status(code) if code >= 400 => (Some(code), Outcome::HttpError),
            Answer::Status(code) => (Some(code), Outcome::Ok),
            Answer::Timeout => (None, Outcome::Timeout),
            Answer::ConnectError => (None, Outcome::ConnectError),
            Answer::RequestError => (None, Outcome::RequestError),
        };
        let (trace_id, sampled) = match &cx {
            Some(cx) => {
                let span = cx.span();
                if let Some(code) = status {
                    span.set_attribute(KeyValue::new("http.response.status_code", i64::from(code)));
                }
                if outcome.is_error() {
                    let kind = match (outcome, status) {
                        (Outcome::HttpError, Some(code)) => code.to_string(),
                        (Outcome::Timeout, _) => "timeout".to_string(),
                        (Outcome::ConnectError, _) => "connection_failed".to_string(),
                        _ => "request_failed".to_string(),
                    };
                    span.set_attribute(KeyValue::new("error.type", kind.clone()));
                    span.set_status(Status::error(kind));
                }
                span.end();
                let context = span.span_context();
                (
                    Some(context.trace_id().to_bytes()),
                    Some(context.is_sampled()),
                )
            }
            None => (None, None),
        };
        let clock = self.clock;
        let sample = Sample {
            sequence: ticket.sequence,
            entry: ticket.entry,
            scheduled_unix_nano: clock.unix_nano(ticket.scheduled),
            released_unix_nano: clock.unix_nano(ticket.released),
            start_unix_nano: clock.unix_nano(started),
            end_unix_nano: clock.unix_nano(ended),
            status,
            outcome,
            trace_id,
            sampled,
            user: ticket.user,
            baggage: ticket.baggage,
            queued_at_cap: ticket.queued_at_cap,
        };
        (sample, ended)
    }

    /// The key and value of a baggage choice, for records.
    pub(crate) fn baggage_member(&self, key: usize, choice: u16) -> (&str, &str) {
        let draw = &self.baggage[key];
        (&draw.key, &draw.values[usize::from(choice)])
    }
}

/// The entry, service and route fields of a `requests.jsonl` line, with their leading comma.
fn json_names(entry: &str, service: &str, route: &str) -> String {
    let quoted = |text: &str| serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string());
    format!(
        ",\"entry\":{},\"service\":{},\"route\":{}",
        quoted(entry),
        quoted(service),
        quoted(route)
    )
}
