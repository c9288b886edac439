//! Tail decisions per second: 10-span traces under five policies (status code, latency,
//! probabilistic, string attribute, numeric attribute), through the buffer simulation
//! (span tests, ring, decision queue, decisions), with and without the arrival sort; and the
//! same five with the string-attribute policy written as an OTTL condition, whose per-span
//! evaluation is the cost measured.
//!
//! Run with `cargo bench -p tracelab-sampling --bench tail_decisions`; criterion reports
//! the throughput in traces (= decisions) per second. The decisions are measured twice: in
//! wall-clock time (criterion's default), and in the CPU time the benchmark thread was given
//! (`/proc/thread-self/schedstat`, Linux), which is what one otherwise idle core would take:
//! on a shared machine the wall clock also counts the time other processes held the core.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tracelab_sampling::tail::{ArrivalOrder, TailSampler, parse_tail_sampling};
use tracelab_trace::{AttrValue, Attribute, Span, SpanId, SpanKind, Status, StatusCode, TraceId};

const POLICIES: &str = "
decision_wait: 10s
num_traces: 100000
policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
  - {name: slow, type: latency, latency: {threshold_ms: 500}}
  - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 5}}
  - {name: checkout, type: string_attribute, string_attribute: {key: http.route, values: [/checkout, /pay]}}
  - {name: server-errors, type: numeric_attribute, numeric_attribute: {key: http.response.status_code, min_value: 500, max_value: 599}}
";

/// The same five, the route policy written as an OTTL condition.
const POLICIES_OTTL: &str = r#"
decision_wait: 10s
num_traces: 100000
policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
  - {name: slow, type: latency, latency: {threshold_ms: 500}}
  - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 5}}
  - name: checkout
    type: ottl_condition
    ottl_condition:
      span: ['attributes["http.route"] == "/checkout" or attributes["http.route"] == "/pay"']
  - {name: server-errors, type: numeric_attribute, numeric_attribute: {key: http.response.status_code, min_value: 500, max_value: 599}}
"#;

fn spans(traces: usize) -> Vec<Span> {
    let resource = Arc::new(vec![Attribute {
        key: "service.name".into(),
        value: AttrValue::Str("frontend".into()),
    }]);
    let routes = ["/", "/cart", "/product/{id}", "/checkout"];
    let mut out = Vec::with_capacity(traces * 10);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for t in 0..traces {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&x.to_le_bytes());
        id[8..].copy_from_slice(&(t as u64).to_le_bytes());
        let start = 1_000_000_000_000 + t as u64 * 1_000_000; // 1,000 traces/s
        for s in 0..10u8 {
            let status = if t % 50 == 0 && s == 9 {
                StatusCode::Error
            } else {
                StatusCode::Unset
            };
            out.push(Span {
                trace_id: TraceId(id),
                span_id: SpanId([s + 1; 8]),
                parent_span_id: (s > 0).then_some(SpanId([1; 8])),
                trace_state: String::new(),
                flags: 1,
                name: format!("GET {}", routes[t % 4]),
                kind: SpanKind::Server,
                start_unix_nano: start + u64::from(s) * 1_000_000,
                end_unix_nano: start + 20_000_000 + u64::from(s) * 2_000_000,
                attributes: vec![
                    Attribute {
                        key: "http.request.method".into(),
                        value: AttrValue::Str("GET".into()),
                    },
                    Attribute {
                        key: "http.route".into(),
                        value: AttrValue::Str(routes[(t + s as usize) % 4].into()),
                    },
                    Attribute {
                        key: "http.response.status_code".into(),
                        value: AttrValue::Int(if t % 97 == 0 { 503 } else { 200 }),
                    },
                    Attribute {
                        key: "server.address".into(),
                        value: AttrValue::Str("frontend".into()),
                    },
                ],
                events: vec![],
                links: vec![],
                status: Status {
                    code: status,
                    message: String::new(),
                },
                service_name: Arc::from("frontend"),
                resource: resource.clone(),
                scope_name: String::new(),
            });
        }
    }
    out
}

fn tail_decisions(c: &mut Criterion) {
    let config = parse_tail_sampling(POLICIES, None)
        .map(|p| p.config)
        .expect("bench policy parses");
    let ottl = parse_tail_sampling(POLICIES_OTTL, None)
        .map(|p| p.config)
        .expect("OTTL bench policy parses");
    let traces = 20_000;
    let spans = spans(traces);
    let mut group = c.benchmark_group("tail");
    group.throughput(Throughput::Elements(traces as u64));
    group.sample_size(20);
    // The decisions: buffer, attribute slots, policies, caches, on spans already in arrival
    // order (as the comparison shares that order between strategies).
    let arrivals = ArrivalOrder::new(&spans);
    group.bench_function("decisions, 10-span traces, 5 policies", |b| {
        b.iter(|| {
            let out = TailSampler::new(&config).simulate_prepared(black_box(&arrivals), None);
            assert_eq!(out.effects.decisions, traces as u64);
            out
        })
    });
    // The same, with the route policy as an OTTL condition evaluated on every span.
    group.bench_function("decisions, 10-span traces, 5 policies, one OTTL", |b| {
        b.iter(|| {
            let out = TailSampler::new(&ottl).simulate_prepared(black_box(&arrivals), None);
            assert_eq!(out.effects.decisions, traces as u64);
            out
        })
    });
    // The whole replay, including sorting 200,000 spans by arrival and sizing them.
    group.bench_function("full replay, 10-span traces, 5 policies", |b| {
        b.iter(|| {
            let out = TailSampler::new(&config).simulate(black_box(&spans));
            assert_eq!(out.effects.decisions, traces as u64);
            out
        })
    });
    group.finish();
}

/// The CPU time this thread has run, in nanoseconds (the first field of
/// `/proc/thread-self/schedstat`).
fn on_cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat (Linux) gives the thread's CPU time")
}

/// Criterion measured in the benchmark thread's CPU time instead of wall-clock time.
struct CpuTime;

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = Duration;

    fn start(&self) -> u64 {
        on_cpu_nanos()
    }
    fn end(&self, start: u64) -> Duration {
        Duration::from_nanos(on_cpu_nanos().saturating_sub(start))
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Formats CPU nanoseconds as milliseconds, and throughputs as elements per CPU-second.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical_ns: f64, values: &mut [f64]) -> &'static str {
        for v in values {
            *v /= 1e6;
        }
        "ms (CPU)"
    }
    fn scale_throughputs(
        &self,
        _typical_ns: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_iteration = match throughput {
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => *n as f64,
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n as f64,
            Throughput::Bits(n) => *n as f64,
        };
        for v in values {
            *v = per_iteration * 1e9 / *v / 1e6;
        }
        "M/CPU-s"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

/// The same decisions, measured in CPU time.
fn tail_decisions_cpu(c: &mut Criterion<CpuTime>) {
    let config = parse_tail_sampling(POLICIES, None)
        .map(|p| p.config)
        .expect("bench policy parses");
    let ottl = parse_tail_sampling(POLICIES_OTTL, None)
        .map(|p| p.config)
        .expect("OTTL bench policy parses");
    let traces = 20_000;
    let spans = spans(traces);
    let arrivals = ArrivalOrder::new(&spans);
    let mut group = c.benchmark_group("tail-cpu");
    group.throughput(Throughput::Elements(traces as u64));
    group.sample_size(20);
    for (name, config) in [
        ("decisions, 10-span traces, 5 policies", &config),
        ("decisions, 10-span traces, 5 policies, one OTTL", &ottl),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let out = TailSampler::new(config).simulate_prepared(black_box(&arrivals), None);
                assert_eq!(out.effects.decisions, traces as u64);
                out
            })
        });
    }
    group.finish();
}

criterion_group!(benches, tail_decisions);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = tail_decisions_cpu
}
criterion_main!(benches, cpu);
