//! The docker compose stack: the fixed observability backends plus one container per scenario
//! service and the load generator.
//!
//! The backends read their configuration from files beside the compose file
//! (`compose/otel-collector/`, `compose/tempo/`, ...) and from `grafana/`, so the compose file
//! only wires them together. Every published port binds to 127.0.0.1: the stack runs Grafana
//! with anonymous admin access and lab services with a fault-injection API, neither of which
//! belongs on a network.

use std::time::Duration;

use tracelab_scenario::Scenario;

use crate::lab::{
    ADMIN_PORT, HTTP_PORT, HeadSampling, LabProcess, OtelSettings, WORK_DIR_IN_IMAGE, load_process,
    service_process,
};
use crate::yaml::{self, Node};

/// The OpenTelemetry Collector (contrib distribution, for `tail_sampling` and `span_metrics`).
pub const COLLECTOR_IMAGE: &str = "otel/opentelemetry-collector-contrib:0.157.0";
/// Jaeger v2, which receives the tail-sampled stream.
pub const JAEGER_IMAGE: &str = "jaegertracing/jaeger:2.17.0";
/// Grafana Tempo, which receives every trace and generates service-graph metrics.
pub const TEMPO_IMAGE: &str = "grafana/tempo:2.10.8";
/// Prometheus, which scrapes the Collector and receives Tempo's remote writes.
pub const PROMETHEUS_IMAGE: &str = "prom/prometheus:v3.13.0";
/// Grafana, provisioned from the repository's `grafana/` directory.
pub const GRAFANA_IMAGE: &str = "grafana/grafana:12.4.2";

/// The compose service name of the Collector; lab processes export to it.
pub const COLLECTOR_SERVICE: &str = "otel-collector";

/// The backend service names, which scenario services must not shadow.
const BACKEND_SERVICES: [&str; 5] = [
    COLLECTOR_SERVICE,
    "jaeger",
    "tempo",
    "prometheus",
    "grafana",
];

/// The name of the load generator's service unless a scenario service already has it.
const LOADGEN_SERVICE: &str = "loadgen";

/// The named volume holding the load generator's run directories, mounted over the image's
/// working directory: it outlives the container, so `docker compose cp` (or any container
/// mounting it) reads `requests.jsonl` and `report.json` after the load has stopped.
pub const LOADGEN_VOLUME: &str = "loadgen-runs";

/// The first host port lab services' HTTP ports are published on, one per service in order.
pub const FIRST_HOST_HTTP_PORT: u16 = 8080;
/// The first host port lab services' admin APIs are published on, one per service in order.
pub const FIRST_HOST_ADMIN_PORT: u16 = 9180;
/// Ports are published for at most this many services, so the ranges never reach the
/// backends' ports (8888, 9090, ...).
const MAX_PUBLISHED_SERVICES: usize = 100;

/// How [`render_compose`] shapes the lab part of the stack.
#[derive(Debug, Clone, PartialEq)]
pub struct ComposeOptions {
    /// The lab image (`tracelab` binary, scenarios under `/scenarios`).
    pub image: String,
    /// The directory the image is built from, relative to the compose file; no `build:` section
    /// when absent (the image then has to exist already, such as one pulled from a registry).
    pub build_context: Option<String>,
    /// A host path, relative to the compose file, mounted read-only over the scenario path in
    /// the image, for scenarios that are not baked into it.
    pub scenario_mount: Option<String>,
    /// How long the load generator runs; the scenario's own duration when absent. The stack is
    /// explored for longer than a scenario's usual minute, hence the default of 30 minutes.
    pub load_duration: Option<Duration>,
    /// Head sampling at the load generator, the root of every trace.
    pub head_sampling: HeadSampling,
    /// Publish each lab service's HTTP and admin ports on 127.0.0.1, so that `curl` and the
    /// fault API reach them from the host.
    pub publish_lab_ports: bool,
}

impl Default for ComposeOptions {
    fn default() -> Self {
        ComposeOptions {
            image: default_image(),
            build_context: Some("..".to_owned()),
            scenario_mount: None,
            load_duration: Some(Duration::from_secs(30 * 60)),
            head_sampling: HeadSampling::AlwaysOn,
            publish_lab_ports: true,
        }
    }
}

/// The image tag of this version of tracelab.
pub fn default_image() -> String {
    format!("tracelab:{}", env!("CARGO_PKG_VERSION"))
}

/// Renders the whole compose file: the backends, one `tracelab svc` per scenario service and
/// the load generator. `scenario_path_in_image` is where the containers read the scenario
/// (see [`crate::scenario_path_in_image`]).
pub fn render_compose(
    scenario: &Scenario,
    scenario_path_in_image: &str,
    options: &ComposeOptions,
) -> String {
    let names = ComposeNames::new(scenario);
    let otel = OtelSettings {
        endpoint: format!("http://{COLLECTOR_SERVICE}:4317"),
        protocol: "grpc".to_owned(),
        root_sampler: options.head_sampling,
        resource_attributes: vec![
            ("service.namespace".to_owned(), scenario.name.clone()),
            (
                "deployment.environment.name".to_owned(),
                "compose".to_owned(),
            ),
        ],
    };
    let url_of = |service: &str| format!("http://{}:{HTTP_PORT}", names.of(service));

    let mut services = backend_services();
    let processes: Vec<LabProcess> = scenario
        .services
        .keys()
        .map(|service| service_process(scenario, service, scenario_path_in_image, &url_of, &otel))
        .collect();
    let dependencies = acyclic_dependencies(&processes);
    for (index, (process, callees)) in processes.iter().zip(&dependencies).enumerate() {
        let mut depends_on = vec![started(COLLECTOR_SERVICE)];
        depends_on.extend(callees.iter().map(|callee| healthy(&names.of(callee))));
        let ports = (options.publish_lab_ports && index < MAX_PUBLISHED_SERVICES).then(|| {
            let offset = u16::try_from(index).unwrap_or(0);
            vec![
                format!("127.0.0.1:{}:{HTTP_PORT}", FIRST_HOST_HTTP_PORT + offset),
                format!("127.0.0.1:{}:{ADMIN_PORT}", FIRST_HOST_ADMIN_PORT + offset),
            ]
        });
        // Replicas are identical copies behind the service's DNS name: host ports cannot be
        // published for more than one of them, and `instances:` overrides are not rendered
        // (docs/compose.md).
        let replicas = scenario
            .services
            .get(&process.name)
            .map_or(1, |s| s.replicas.max(1));
        let service = lab_service(process, scenario_path_in_image, options, depends_on)
            .with("healthcheck", accepts_connections(HTTP_PORT));
        let service = match ports.filter(|_| replicas == 1) {
            Some(ports) => service.with("ports", Node::strings(ports)),
            None => service,
        };
        let service = if replicas > 1 {
            service.with("deploy", Node::map().with("replicas", replicas))
        } else {
            service
        };
        services.push((names.of(&process.name), service));
    }

    let load = load_process(
        scenario,
        &names.loadgen,
        scenario_path_in_image,
        &url_of,
        options.load_duration,
        &otel,
    );
    let mut depends_on = vec![started(COLLECTOR_SERVICE)];
    depends_on.extend(load.calls.iter().map(|entry| healthy(&names.of(entry))));
    let loadgen =
        lab_service(&load, scenario_path_in_image, options, depends_on).with("restart", "no");
    services.push((names.loadgen.clone(), loadgen));

    let document = Node::map()
        .with("name", "tracelab")
        .with("services", Node::Map(services))
        .with("volumes", Node::map().with(LOADGEN_VOLUME, Node::map()));
    format!(
        "{}{}",
        header(scenario_path_in_image, options),
        yaml::to_string(&document)
    )
}

/// The comment at the top of the file: where it comes from and how to use it.
fn header(scenario_path_in_image: &str, options: &ComposeOptions) -> String {
    let file = scenario_path_in_image
        .rsplit('/')
        .next()
        .unwrap_or(scenario_path_in_image);
    let mut text = String::new();
    text.push_str("# The tracelab lab stack: OpenTelemetry Collector, Jaeger, Tempo, Prometheus and Grafana,\n");
    text.push_str("# plus one container per service of the scenario and the load generator.\n");
    text.push_str("#\n");
    text.push_str(&format!(
        "# Generated by `tracelab render compose scenarios/{file}`; do not edit by hand. Regenerate with\n"
    ));
    text.push_str(&format!(
        "#   cargo run -p tracelab -- render compose scenarios/{file} > compose/docker-compose.yaml\n"
    ));
    text.push_str("#\n");
    text.push_str("# Start:   docker compose -f compose/docker-compose.yaml up --build -d\n");
    text.push_str("# Grafana: http://localhost:3000   Jaeger: http://localhost:16686   Prometheus: http://localhost:9090\n");
    if options.head_sampling != HeadSampling::AlwaysOn {
        text.push_str("# Head sampling is on at the load generator: Tempo receives only the head-sampled traces.\n");
    }
    text.push_str("# See docs/compose.md for a tour.\n");
    text
}

/// Compose service names for scenario services, which usually are the services' own names.
struct ComposeNames {
    /// Scenario services whose name is a backend's name and who therefore get a `lab-` prefix.
    renamed: Vec<String>,
    /// The load generator's service name.
    loadgen: String,
}

impl ComposeNames {
    fn new(scenario: &Scenario) -> ComposeNames {
        let renamed = scenario
            .services
            .keys()
            .filter(|name| BACKEND_SERVICES.contains(&name.as_str()))
            .cloned()
            .collect();
        let mut loadgen = LOADGEN_SERVICE.to_owned();
        while scenario.services.contains_key(&loadgen) {
            loadgen = format!("tracelab-{loadgen}");
        }
        ComposeNames { renamed, loadgen }
    }

    fn of(&self, service: &str) -> String {
        if self.renamed.iter().any(|name| name == service) {
            format!("lab-{service}")
        } else {
            service.to_owned()
        }
    }
}

/// For each process, the callees it may declare in `depends_on`. Compose refuses dependency
/// cycles, while a scenario may well have service A call B on one route and B call A on
/// another; an edge that would close a cycle is left out (startup order is a convenience:
/// `tracelab svc` does not need its peers up to start).
fn acyclic_dependencies(processes: &[LabProcess]) -> Vec<Vec<String>> {
    let mut edges: Vec<(String, String)> = Vec::new();
    let mut result = Vec::with_capacity(processes.len());
    for process in processes {
        let mut kept = Vec::new();
        for callee in &process.calls {
            if !reaches(&edges, callee, &process.name) {
                edges.push((process.name.clone(), callee.clone()));
                kept.push(callee.clone());
            }
        }
        result.push(kept);
    }
    result
}

/// Whether `to` is reachable from `from` along `edges`.
fn reaches(edges: &[(String, String)], from: &str, to: &str) -> bool {
    let mut stack = vec![from.to_owned()];
    let mut seen: Vec<String> = Vec::new();
    while let Some(node) = stack.pop() {
        if node == to {
            return true;
        }
        if seen.contains(&node) {
            continue;
        }
        seen.push(node.clone());
        stack.extend(
            edges
                .iter()
                .filter(|(a, _)| *a == node)
                .map(|(_, b)| b.clone()),
        );
    }
    false
}

/// A lab container: the image, `tracelab` with the process's arguments and environment, a
/// read-only root filesystem (a lab process writes nothing but its run directory), the
/// scenario mount and the load generator's run-directory volume, and the start order.
/// `depends_on` entries are `(service, condition)` pairs from [`started`] and [`healthy`].
fn lab_service(
    process: &LabProcess,
    scenario_path_in_image: &str,
    options: &ComposeOptions,
    depends_on: Vec<(String, Node)>,
) -> Node {
    let mut service = Node::map().with("image", options.image.as_str());
    if let Some(context) = &options.build_context {
        service = service.with(
            "build",
            Node::map()
                .with("context", context.as_str())
                .with("dockerfile", "Dockerfile"),
        );
    }
    service = service.with("command", Node::strings(process.args.iter().cloned()));
    let environment = process
        .env
        .iter()
        .map(|(key, value)| (key.clone(), Node::Str(value.clone())))
        .collect();
    service = service
        .with("environment", Node::Map(environment))
        .with("read_only", true);
    let mut volumes = Vec::new();
    if let Some(host_path) = &options.scenario_mount {
        volumes.push(format!("{host_path}:{scenario_path_in_image}:ro"));
    }
    if process.args.first().map(String::as_str) == Some("load") {
        volumes.push(format!("{LOADGEN_VOLUME}:{WORK_DIR_IN_IMAGE}"));
    }
    if !volumes.is_empty() {
        service = service.with("volumes", Node::strings(volumes));
    }
    service.with("depends_on", Node::Map(depends_on))
}

/// A `depends_on` entry: start after `service` has started (it has no health check).
fn started(service: &str) -> (String, Node) {
    (
        service.to_owned(),
        Node::map().with("condition", "service_started"),
    )
}

/// A `depends_on` entry: start after `service`'s health check passes.
fn healthy(service: &str) -> (String, Node) {
    (
        service.to_owned(),
        Node::map().with("condition", "service_healthy"),
    )
}

/// The health check of a lab service: its port accepts connections. The image has bash but
/// no HTTP client, so bash's `/dev/tcp` opens the connection; `localhost` is the container's
/// own address.
fn accepts_connections(port: u16) -> Node {
    health_check(&[
        "CMD",
        "bash",
        "-c",
        &format!("exec 3<>/dev/tcp/localhost/{port}"),
    ])
}

/// A health check running `test` every two seconds, for up to a minute after the start.
/// A health check that asks `url` with the image's own (busybox) wget.
fn wget_health_check(url: &str) -> Node {
    health_check(&["CMD", "wget", "-q", "-O", "/dev/null", url])
}

fn health_check(test: &[&str]) -> Node {
    Node::map()
        .with("test", Node::strings(test.iter().copied()))
        .with("interval", "2s")
        .with("timeout", "2s")
        .with("retries", 30i64)
}

/// The observability backends. Their configuration lives in files beside the compose file.
/// Prometheus and Grafana have health checks (their images carry wget); the Collector's image
/// holds nothing but its binary, so it and the backends behind it are waited for as started,
/// and `compose/smoke.sh` asks their HTTP APIs instead.
fn backend_services() -> Vec<(String, Node)> {
    let collector = Node::map()
        .with("image", COLLECTOR_IMAGE)
        // The second file holds only the tail-sampling policies, so that `tracelab compare`
        // reads exactly what the Collector runs. The Collector merges the two files.
        .with(
            "command",
            Node::strings([
                "--config=/etc/otelcol-contrib/config.yaml",
                "--config=/etc/otelcol-contrib/tail-sampling.yaml",
            ]),
        )
        .with(
            "volumes",
            Node::strings([
                "./otel-collector/config.yaml:/etc/otelcol-contrib/config.yaml:ro",
                "./otel-collector/tail-sampling.yaml:/etc/otelcol-contrib/tail-sampling.yaml:ro",
            ]),
        )
        .with(
            "ports",
            Node::strings([
                "127.0.0.1:4317:4317",
                "127.0.0.1:4318:4318",
                "127.0.0.1:8888:8888",
                "127.0.0.1:8889:8889",
            ]),
        )
        .with(
            "depends_on",
            Node::Map(vec![started("jaeger"), started("tempo")]),
        );
    let jaeger = Node::map()
        .with("image", JAEGER_IMAGE)
        .with(
            "command",
            Node::strings(["--config=/etc/jaeger/config.yaml"]),
        )
        .with(
            "volumes",
            Node::strings(["./jaeger/config.yaml:/etc/jaeger/config.yaml:ro"]),
        )
        .with("ports", Node::strings(["127.0.0.1:16686:16686"]));
    let tempo = Node::map()
        .with("image", TEMPO_IMAGE)
        .with(
            "command",
            Node::strings(["-config.file=/etc/tempo/tempo.yaml"]),
        )
        .with(
            "volumes",
            Node::strings(["./tempo/tempo.yaml:/etc/tempo/tempo.yaml:ro"]),
        )
        .with("ports", Node::strings(["127.0.0.1:3200:3200"]))
        .with("depends_on", Node::Map(vec![healthy("prometheus")]));
    let prometheus = Node::map()
        .with("image", PROMETHEUS_IMAGE)
        .with(
            "command",
            Node::strings([
                "--config.file=/etc/prometheus/prometheus.yaml",
                "--storage.tsdb.retention.time=1d",
                // Tempo's metrics generator pushes service-graph metrics here.
                "--web.enable-remote-write-receiver",
                "--enable-feature=exemplar-storage",
            ]),
        )
        .with(
            "volumes",
            Node::strings(["./prometheus/prometheus.yaml:/etc/prometheus/prometheus.yaml:ro"]),
        )
        .with("ports", Node::strings(["127.0.0.1:9090:9090"]))
        // The image is busybox-based: its wget asks the readiness endpoint.
        .with(
            "healthcheck",
            wget_health_check("http://localhost:9090/-/ready"),
        );
    let grafana = Node::map()
        .with("image", GRAFANA_IMAGE)
        .with(
            "environment",
            Node::map()
                .with("GF_AUTH_ANONYMOUS_ENABLED", "true")
                .with("GF_AUTH_ANONYMOUS_ORG_ROLE", "Admin")
                .with("GF_AUTH_DISABLE_LOGIN_FORM", "true")
                .with(
                    "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH",
                    "/var/lib/grafana/dashboards/red.json",
                ),
        )
        .with(
            "volumes",
            Node::strings([
                "../grafana/provisioning:/etc/grafana/provisioning:ro",
                "../grafana/dashboards:/var/lib/grafana/dashboards:ro",
            ]),
        )
        .with("ports", Node::strings(["127.0.0.1:3000:3000"]))
        .with(
            "healthcheck",
            wget_health_check("http://localhost:3000/api/health"),
        )
        .with(
            "depends_on",
            Node::Map(vec![
                healthy("prometheus"),
                started("tempo"),
                started("jaeger"),
            ]),
        );
    vec![
        (COLLECTOR_SERVICE.to_owned(), collector),
        ("jaeger".to_owned(), jaeger),
        ("tempo".to_owned(), tempo),
        ("prometheus".to_owned(), prometheus),
        ("grafana".to_owned(), grafana),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(name: &str, calls: &[&str]) -> LabProcess {
        LabProcess {
            name: name.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            calls: calls.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    #[test]
    fn dependency_cycles_are_broken() {
        let processes = [
            process("a", &["b"]),
            process("b", &["a", "c"]),
            process("c", &["a"]),
        ];
        let deps = acyclic_dependencies(&processes);
        assert_eq!(
            deps,
            vec![
                vec!["b".to_owned()],
                vec!["c".to_owned()],
                Vec::<String>::new()
            ]
        );
    }

    #[test]
    fn chains_keep_every_edge() {
        let processes = [
            process("a", &["b", "c"]),
            process("b", &["c"]),
            process("c", &[]),
        ];
        let deps = acyclic_dependencies(&processes);
        assert_eq!(
            deps,
            vec![
                vec!["b".to_owned(), "c".to_owned()],
                vec!["c".to_owned()],
                vec![]
            ]
        );
    }
}
