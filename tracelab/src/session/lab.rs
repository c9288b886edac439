//! The embedded backend of a session: the OTLP receiver, every scenario service, and the
//! streaming analysis of the traces as they finish arriving.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::runtime::Handle;
use tracelab_analysis::{AnalysisOptions, Analyzer};
use tracelab_loadgen::incidents::IncidentWindow;
use tracelab_receiver::{
    AssemblyOptions, BoundReceiver, Forwarder, Receiver, ReceiverConfig, ReceiverError, SpanSink,
    TraceStore,
};
use tracelab_scenario::Scenario;
use tracelab_services::{HostOptions, ServiceHost};
use tracelab_telemetry::{ExportConfig, ExportStats, OtlpProtocol, ServiceTelemetry};
use tracelab_trace::Trace;

use super::{LabOptions, Stopped};
use crate::rundir::{self, RunDir};
use crate::signals::Signals;
use crate::summary::ForwardReport;

/// The running lab.
pub(super) struct Lab {
    /// The span pipeline's runtime, where the receiver serves.
    pipeline: Handle,
    /// The priority of the pipeline's threads, which trace analysis runs at too.
    priority: super::pipeline::Priority,
    /// Bound at start, served once the run directory (and its span file) exists.
    bound: Option<BoundReceiver>,
    receiver: Option<Receiver>,
    store: Option<Arc<TraceStore>>,
    /// What the store's consumer feeds, one finished trace at a time.
    collected: Arc<Mutex<RunTraces>>,
    host: ServiceHost,
    export: ExportConfig,
    forwarder: Option<Arc<Forwarder>>,
}

impl Lab {
    /// Binds the receiver and starts every service. Nothing is written anywhere yet.
    pub(super) async fn start(
        scenario: Arc<Scenario>,
        options: &LabOptions,
        pipeline: &super::pipeline::Pipeline,
        warnings: &mut Vec<String>,
    ) -> anyhow::Result<Lab> {
        let priority = pipeline.priority();
        let pipeline = &pipeline.handle();
        // Bound on the pipeline's runtime, so its I/O is driven there.
        let bound = {
            let options = options.clone();
            pipeline
                .spawn(async move {
                    let mut warnings = Vec::new();
                    bind_receiver(&options, &mut warnings)
                        .await
                        .map(|bound| (bound, warnings))
                })
                .await
                .context("the span pipeline stopped")??
        };
        let (bound, moved) = bound;
        warnings.extend(moved);
        let export = ExportConfig {
            batch: options.batch,
            ..ExportConfig::new(
                match options.protocol {
                    OtlpProtocol::Grpc => format!("http://{}", bound.grpc_addr()),
                    OtlpProtocol::HttpProtobuf => format!("http://{}", bound.http_addr()),
                },
                options.protocol,
            )
        };
        let forwarder = if options.forward.is_empty() {
            None
        } else {
            let _entered = pipeline.enter();
            Some(Arc::new(Forwarder::start(
                &options.forward,
                Duration::from_secs(10),
            )?))
        };
        let host = ServiceHost::start(
            scenario,
            &HostOptions {
                export: Some(export.clone()),
                timer: options.timer,
                telemetry_runtime: Some(pipeline.clone()),
                ..HostOptions::default()
            },
        )
        .await?;
        Ok(Lab {
            pipeline: pipeline.clone(),
            priority,
            bound: Some(bound),
            receiver: None,
            store: None,
            collected: Arc::new(Mutex::new(RunTraces::new(options.keep_traces))),
            host,
            export,
            forwarder,
        })
    }

    /// Where each instance of service `name` listens, in instance order.
    pub(super) fn urls(&self, name: &str) -> Vec<String> {
        self.host.peers().urls(name).to_vec()
    }

    /// Where the load generator's own spans go.
    pub(super) fn export(&self) -> ExportConfig {
        self.export.clone()
    }

    /// Watches the exporters of every service and of the load generator (`root`): the trace
    /// assembly waits for what they still hold before it hands a trace over, and the load
    /// generator is held back (the returned backpressure) while their queues are long.
    pub(super) fn watch_pipeline(
        &self,
        root: Option<&ServiceTelemetry>,
    ) -> tracelab_loadgen::Backpressure {
        let providers: Vec<ServiceTelemetry> = self
            .host
            .services()
            .iter()
            .map(|s| s.telemetry.clone())
            .chain(root.cloned())
            .collect();
        if let Some(store) = &self.store {
            let providers = providers.clone();
            store.wait_for_deliveries(super::pipeline::delivered_up_to(move || {
                providers
                    .iter()
                    .map(|p| {
                        let stats = p.stats();
                        (stats.ended, stats.ended - stats.queued())
                    })
                    .collect()
            }));
        }
        let queued = move || {
            providers
                .iter()
                .map(|p| p.stats().queued())
                .max()
                .unwrap_or(0)
        };
        super::pipeline::backpressure(queued, self.export.batch.max_queue_size)
    }

    /// The admin API of every instance of every service, by service, in instance order.
    pub(super) fn admin_urls(&self) -> HashMap<String, Vec<String>> {
        let mut urls: HashMap<String, Vec<String>> = HashMap::new();
        for s in self.host.services() {
            urls.entry(s.name.clone())
                .or_default()
                .push(format!("http://{}", s.admin_addr));
        }
        urls
    }

    /// Creates the span file in `dir` and starts receiving into it.
    pub(super) fn open_run_directory(
        &mut self,
        dir: &RunDir,
        signals: &Signals,
    ) -> anyhow::Result<()> {
        let path = dir.file(rundir::SPANS_FILE);
        let sink =
            SpanSink::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let consumer = self.collected.clone();
        let priority = self.priority;
        let store = Arc::new(TraceStore::streaming(
            Some(sink),
            AssemblyOptions::default(),
            move |trace| {
                background_thread(priority);
                lock(&consumer).add(trace)
            },
        ));
        if let Some(forwarder) = &self.forwarder {
            store.forward_to(forwarder.clone());
        }
        let flushing = store.clone();
        signals.on_forced_exit(Box::new(move || {
            let _ = flushing.flush_sink();
        }));
        if let Some(bound) = self.bound.take() {
            let _entered = self.pipeline.enter();
            self.receiver = Some(bound.serve(store.clone()));
        }
        self.store = Some(store);
        Ok(())
    }

    /// Serves the live console on `listener`, fed every line the span file gets from now on.
    pub(super) fn serve_console(
        &self,
        listener: std::net::TcpListener,
        title: &str,
        dir: &std::path::Path,
    ) -> anyhow::Result<crate::console::Served> {
        let store = self
            .store
            .clone()
            .context("the console needs the run directory's span file")?;
        let flushing = store.clone();
        let console = Arc::new(crate::console::Console::live(
            title,
            dir,
            self.admin_urls(),
            Box::new(move || {
                let _ = flushing.flush_sink();
            }),
        ));
        let observing = console.clone();
        store.observe_lines(Box::new(move |offset, len, spans| {
            observing.observe(offset, len, spans);
        }));
        crate::console::Served::start(listener, console)
    }

    /// `services.json`: where each instance of each service and its admin (fault) API listen,
    /// and who it is in the traces (`service.instance.id`, `service.version`), so faults can
    /// be switched on by hand during the run (`curl -X POST <admin_url>/admin/faults -d
    /// '{...}'`) and an instance in a report found again.
    pub(super) fn write_services_file(&self, dir: &RunDir, warnings: &mut Vec<String>) {
        let addresses: Vec<serde_json::Value> = self
            .host
            .services()
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "instance": s.instance,
                    "instance_id": s.instance_id,
                    "version": s.version,
                    "url": format!("http://{}", s.addr),
                    "admin_url": format!("http://{}", s.admin_addr),
                })
            })
            .collect();
        tracing::info!(services = %serde_json::Value::from(addresses.clone()), "services and their admin APIs");
        let written = serde_json::to_vec_pretty(&addresses)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| dir.write(rundir::SERVICES_FILE, &bytes));
        if let Err(e) = written {
            warnings.push(format!("{e:#}"));
        }
    }

    /// Waits while the services' exporters (and `root`, the load generator's) still hold spans and the receiver has stored one within the last
    /// `timeout`. On a starved machine each export can time out on the exporter's side while
    /// the receiver still stores its spans a moment later: the exporters then see no span
    /// exported, and their shutdown, which waits only while spans are exported, would count
    /// every span still queued lost. Here the queues drain for as long as spans keep arriving.
    pub(super) async fn settle(&self, timeout: Duration, root: Option<&ServiceTelemetry>) {
        let Some(store) = &self.store else {
            return;
        };
        let queued = || self.host.export_stats().queued() + root.map_or(0, |r| r.stats().queued());
        let mut stored = store.span_count();
        let mut arrived = std::time::Instant::now();
        while queued() > 0 && arrived.elapsed() < timeout {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = store.span_count();
            if now > stored {
                stored = now;
                arrived = std::time::Instant::now();
            }
        }
    }

    /// Stops everything of a lab that never ran load.
    pub(super) async fn abandon(self, timeout: Duration) {
        let _ = self.host.shutdown(timeout).await;
        if let Some(receiver) = self.receiver {
            receiver.shutdown().await;
        }
    }

    /// Stops the services (flushing their spans), waits until the receiver holds every span
    /// the exporters delivered (`root` is the load generator's share, from the instance
    /// `root_instance`), stops the receiver and finishes the analysis.
    pub(super) async fn stop(
        self,
        timeout: Duration,
        root: ExportStats,
        root_instance: Option<&str>,
    ) -> Stopped {
        let mut warnings = Vec::new();
        // Every process of the lab that exports spans, by `service.instance.id`.
        let producers: Vec<String> = self
            .host
            .services()
            .iter()
            .map(|s| s.instance_id.clone())
            .chain(root_instance.map(str::to_owned))
            .collect();
        let timings: Vec<_> = self
            .host
            .services()
            .iter()
            .map(|s| s.timing.clone())
            .collect();
        let hand_made = hand_made_incidents(&self.host);
        let services: ExportStats = self
            .host
            .shutdown(timeout)
            .await
            .into_iter()
            .map(|(_, s)| s)
            .sum();
        let export = services;
        let delivered = (services + root).exported;
        let mut receiver_stats = None;
        let mut stored_late = None;
        if let Some(store) = &self.store
            && !store.wait_for_spans(delivered, timeout).await
        {
            warnings.push(format!(
                "only {} of the {delivered} spans the exporters delivered arrived within {timeout:?}",
                store.span_count()
            ));
        }
        if let Some(receiver) = self.receiver {
            receiver.shutdown().await;
        }
        let forwarded = match &self.forwarder {
            Some(forwarder) => forwarder
                .finish(timeout)
                .await
                .into_iter()
                .map(|f| ForwardReport {
                    endpoint: f.target.endpoint,
                    protocol: f.target.protocol.as_str().to_string(),
                    spans_delivered: f.delivered,
                    spans_failed: f.failed,
                })
                .collect(),
            None => Vec::new(),
        };
        if let Some(store) = &self.store {
            if let Err(e) = store.flush_sink() {
                warnings.push(format!("cannot flush spans.otlp.jsonl: {e}"));
            }
            // The traces still open are analysed by the consumer, which lowers the priority of
            // the thread it runs on (`background_thread`): a thread of its own, not one of this
            // runtime's workers, which later sessions in this process still time waits on.
            let finishing = Arc::clone(store);
            let (done, finished) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new()
                .name("tracelab-trace-finish".into())
                .spawn(move || {
                    finishing.finish_traces();
                    let _ = done.send(());
                });
            match spawned {
                Ok(_) => {
                    let _ = finished.await;
                }
                Err(_) => store.finish_traces(),
            }
            receiver_stats = Some(store.stats());
            // An exporter that stops waiting for an answer (its export timeout, or the
            // shutdown's deadline on a starved machine) counts the spans failed, yet the
            // receiver may have stored them, or store them just after: the receiver, now
            // stopped, has the last word on what arrived.
            let stored = store.spans_from_instances(producers.iter().map(String::as_str));
            stored_late = Some(stored.saturating_sub(delivered));
        }
        let RunTraces { analyzer, kept } =
            std::mem::replace(&mut *lock(&self.collected), RunTraces::new(false));
        let (analysis, singled_out) = analyzer.finish();
        let mut traces = kept.unwrap_or(singled_out);
        traces.sort_by_key(|t| {
            (
                t.spans.first().map(|s| s.start_unix_nano).unwrap_or(0),
                t.trace_id,
            )
        });
        let mut all = tracelab_timer::nanos_histogram();
        for timing in &timings {
            let _ = all.add(timing.histogram());
        }
        Stopped {
            export,
            stored_late,
            receiver: receiver_stats,
            analysis: Some(analysis),
            traces,
            forwarded,
            injected_waits: Some(tracelab_timer::summarize(&all)),
            hand_made_incidents: hand_made,
            warnings,
        }
    }
}

/// Binds the receiver where asked; when the addresses are the defaults and taken (a local
/// Collector on 4317/4318), on free ports instead, with a warning that says which.
async fn bind_receiver(
    options: &LabOptions,
    warnings: &mut Vec<String>,
) -> anyhow::Result<BoundReceiver> {
    match Receiver::bind(&options.receiver).await {
        Ok(bound) => Ok(bound),
        Err(ReceiverError::Bind { source, .. })
            if source.kind() == std::io::ErrorKind::AddrInUse
                && !options.receiver_addresses_given =>
        {
            let free = ReceiverConfig {
                grpc_addr: SocketAddr::new(options.receiver.grpc_addr.ip(), 0),
                http_addr: SocketAddr::new(options.receiver.http_addr.ip(), 0),
                ..options.receiver.clone()
            };
            let bound = Receiver::bind(&free).await?;
            let message = format!(
                "the OTLP ports {} and {} are taken (a local Collector?): the embedded receiver \
                 listens on {} (gRPC) and {} (HTTP) instead",
                options.receiver.grpc_addr.port(),
                options.receiver.http_addr.port(),
                bound.grpc_addr(),
                bound.http_addr()
            );
            eprintln!("note: {message}");
            warnings.push(message);
            Ok(bound)
        }
        Err(e) => Err(e.into()),
    }
}

/// Faults switched on by hand through an admin API during the run (the timeline's own are
/// recorded by the player). A fault still on when the load ends gets now as its end. An
/// instance's admin API puts a fault on that instance alone, so the window names it when the
/// service has several.
fn hand_made_incidents(host: &ServiceHost) -> Vec<IncidentWindow> {
    let now = tracelab_services::faults::unix_nanos(std::time::SystemTime::now());
    let mut windows = Vec::new();
    for service in host.services() {
        let several = host
            .services()
            .iter()
            .any(|other| other.name == service.name && other.instance != service.instance);
        for window in service.faults.history() {
            if window.source == "timeline" {
                continue;
            }
            windows.push(IncidentWindow {
                start_unix_nano: window.start_unix_nano,
                end_unix_nano: window.end_unix_nano.unwrap_or(now),
                what: window.what,
                service: window.service,
                instance: several.then_some(service.instance),
                route: window.route,
                source: window.source,
                fault: window.fault,
            });
        }
    }
    windows
}

/// What a run keeps of its traces: the analysis, fed one finished trace at a time by the
/// store, and the traces themselves only when asked to.
struct RunTraces {
    analyzer: Analyzer,
    kept: Option<Vec<Trace>>,
}

impl RunTraces {
    fn new(keep: bool) -> Self {
        RunTraces {
            analyzer: Analyzer::new(&AnalysisOptions::default()),
            kept: keep.then(Vec::new),
        }
    }

    fn add(&mut self, trace: Trace) {
        self.analyzer.add(&trace);
        if let Some(kept) = &mut self.kept {
            kept.push(trace);
        }
    }
}

/// Lowers the calling thread's priority, once: the analysis of finished traces, like the span
/// pipeline, yields to the services (see `session/pipeline.rs`).
fn background_thread(priority: super::pipeline::Priority) {
    thread_local!(static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    LOWERED.with(|lowered| {
        if !lowered.replace(true) {
            priority.apply();
        }
    });
}

fn lock(traces: &Mutex<RunTraces>) -> std::sync::MutexGuard<'_, RunTraces> {
    // A panic while adding one trace leaves the tallies of the others intact.
    traces.lock().unwrap_or_else(|p| p.into_inner())
}
