//! How a scenario becomes lab processes: one `tracelab svc` per service and one `tracelab load`,
//! with the arguments and environment the `tracelab` binary reads.
//!
//! Both renderers build their containers from [`LabProcess`], so docker compose and Kubernetes
//! start the very same command lines; only the peer URLs (a compose hostname, a Kubernetes
//! service name) and the Collector endpoint differ.

use std::time::Duration;

use tracelab_scenario::Scenario;

/// The port every lab service listens on inside its container.
pub const HTTP_PORT: u16 = 8080;

/// The port of every lab service's admin API (runtime faults) inside its container.
pub const ADMIN_PORT: u16 = 9091;

/// Where the image keeps the scenario files of the repository's `scenarios/` directory.
pub const SCENARIO_DIR_IN_IMAGE: &str = "/scenarios";

/// The image's working directory, owned by its user: `tracelab run` and `tracelab load` create
/// their run directories (`runs/<scenario>-<time>`) here. The Dockerfile declares it a volume;
/// the renderers mount one over it wherever a process writes, because every lab container's
/// root filesystem is read-only.
pub const WORK_DIR_IN_IMAGE: &str = "/data";

/// The user and group id the image runs as (`USER` in the Dockerfile).
pub const IMAGE_USER_ID: i64 = 10001;

/// The environment variable holding the listen address of `tracelab svc`.
pub const LISTEN_ENV: &str = "TRACELAB_LISTEN";

/// The environment variable holding the admin listen address of `tracelab svc`.
pub const ADMIN_LISTEN_ENV: &str = "TRACELAB_ADMIN_LISTEN";

/// The variable `tracelab svc` reads its instance index from (`--instance`).
pub const INSTANCE_ENV: &str = "TRACELAB_INSTANCE";

/// The environment variable that gives `service`'s base URL to the services that call it:
/// `TRACELAB_PEER_` and the name upper-cased with `-` turned into `_`.
pub fn peer_env_var(service: &str) -> String {
    format!("TRACELAB_PEER_{}", env_suffix(service))
}

/// The environment variable that gives an entry service's base URL to `tracelab load`.
pub fn target_env_var(service: &str) -> String {
    format!("TRACELAB_TARGET_{}", env_suffix(service))
}

fn env_suffix(service: &str) -> String {
    service
        .chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

/// The path of a scenario file inside the image, from the file's name
/// (`scenarios/quickstart.yaml` becomes `/scenarios/quickstart.yaml`).
pub fn scenario_path_in_image(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    format!("{SCENARIO_DIR_IN_IMAGE}/{base}")
}

/// The services `service` calls, each once, in the order its routes first call them.
pub fn callees(scenario: &Scenario, service: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let Some(definition) = scenario.services.get(service) else {
        return found;
    };
    for route in definition.routes.values() {
        for step in &route.steps {
            for call in step.calls() {
                if call.service != service && !found.contains(&call.service) {
                    found.push(call.service.clone());
                }
            }
        }
    }
    found
}

/// The services the load enters through, each once, in the order of the load's entries.
pub fn entry_services(scenario: &Scenario) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for entry in &scenario.load.entries {
        if !found.contains(&entry.service) {
            found.push(entry.service.clone());
        }
    }
    found
}

/// The OpenTelemetry SDK settings a lab process gets through the standard `OTEL_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelSettings {
    /// The OTLP endpoint, such as `http://otel-collector:4317`.
    pub endpoint: String,
    /// `grpc` or `http/protobuf`.
    pub protocol: String,
    /// The sampler of the load generator, which starts every trace. Services always follow
    /// their parent's decision (`parentbased_always_on`), so this one setting is the head
    /// sampling of the whole lab.
    pub root_sampler: HeadSampling,
    /// Extra resource attributes, `key=value` pairs in order.
    pub resource_attributes: Vec<(String, String)>,
}

/// Head sampling at the root of every trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HeadSampling {
    /// Every trace is recorded and exported.
    AlwaysOn,
    /// A trace is kept with this probability, decided from its trace id.
    Ratio(f64),
}

impl HeadSampling {
    /// `AlwaysOn` for ratios of 1 and above, else a ratio clamped at 0.
    pub fn from_ratio(ratio: f64) -> HeadSampling {
        if ratio >= 1.0 || ratio.is_nan() {
            HeadSampling::AlwaysOn
        } else {
            HeadSampling::Ratio(ratio.max(0.0))
        }
    }
}

impl OtelSettings {
    fn service_env(&self, env: &mut Vec<(String, String)>) {
        self.common_env(env);
        env.push(("OTEL_TRACES_SAMPLER".into(), "parentbased_always_on".into()));
    }

    fn root_env(&self, env: &mut Vec<(String, String)>) {
        self.common_env(env);
        match self.root_sampler {
            HeadSampling::AlwaysOn => {
                env.push(("OTEL_TRACES_SAMPLER".into(), "parentbased_always_on".into()));
            }
            HeadSampling::Ratio(ratio) => {
                env.push((
                    "OTEL_TRACES_SAMPLER".into(),
                    "parentbased_traceidratio".into(),
                ));
                env.push(("OTEL_TRACES_SAMPLER_ARG".into(), format!("{ratio}")));
            }
        }
    }

    fn common_env(&self, env: &mut Vec<(String, String)>) {
        env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), self.endpoint.clone()));
        env.push(("OTEL_EXPORTER_OTLP_PROTOCOL".into(), self.protocol.clone()));
        if !self.resource_attributes.is_empty() {
            let joined = self
                .resource_attributes
                .iter()
                .map(|(key, value)| format!("{key}={}", encode_attribute_value(value)))
                .collect::<Vec<_>>()
                .join(",");
            env.push(("OTEL_RESOURCE_ATTRIBUTES".into(), joined));
        }
    }
}

/// Percent-encodes what `OTEL_RESOURCE_ATTRIBUTES` cannot carry as is (it uses the W3C baggage
/// syntax): a scenario named `black friday, 2x` must not split into two attributes.
fn encode_attribute_value(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        let allowed = matches!(byte, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
            && byte != b'%';
        if allowed {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// One process of the lab, ready to become a container.
#[derive(Debug, Clone, PartialEq)]
pub struct LabProcess {
    /// The container, compose service or Kubernetes object name.
    pub name: String,
    /// The arguments after the `tracelab` binary.
    pub args: Vec<String>,
    /// The environment, in a stable order.
    pub env: Vec<(String, String)>,
    /// The lab services this process sends requests to.
    pub calls: Vec<String>,
}

/// `tracelab svc FILE --service NAME`, listening on all interfaces, with one
/// `TRACELAB_PEER_<SERVICE>` per service it calls. `url_of` maps a service name to its base URL
/// as the caller sees it.
pub fn service_process(
    scenario: &Scenario,
    service: &str,
    scenario_path: &str,
    url_of: &dyn Fn(&str) -> String,
    otel: &OtelSettings,
) -> LabProcess {
    let calls = callees(scenario, service);
    let mut env = vec![
        (LISTEN_ENV.to_owned(), format!("0.0.0.0:{HTTP_PORT}")),
        (ADMIN_LISTEN_ENV.to_owned(), format!("0.0.0.0:{ADMIN_PORT}")),
    ];
    env.extend(calls.iter().map(|peer| (peer_env_var(peer), url_of(peer))));
    otel.service_env(&mut env);
    LabProcess {
        name: service.to_owned(),
        args: vec![
            "svc".into(),
            scenario_path.to_owned(),
            "--service".into(),
            service.to_owned(),
        ],
        env,
        calls,
    }
}

/// `tracelab load FILE --target NAME=URL... --duration D --no-progress`, one target per entry
/// service. The targets are flags rather than `TRACELAB_TARGET_*` variables so that the
/// command line shown by `docker compose ps` or `kubectl describe` is the whole story.
pub fn load_process(
    scenario: &Scenario,
    name: &str,
    scenario_path: &str,
    url_of: &dyn Fn(&str) -> String,
    duration: Option<Duration>,
    otel: &OtelSettings,
) -> LabProcess {
    let calls = entry_services(scenario);
    let mut args = vec!["load".to_owned(), scenario_path.to_owned()];
    for target in &calls {
        args.push("--target".into());
        args.push(format!("{target}={}", url_of(target)));
    }
    args.push("--duration".into());
    args.push(format_duration(duration.unwrap_or(scenario.load.duration)));
    args.push("--no-progress".into());
    let mut env = Vec::new();
    otel.root_env(&mut env);
    LabProcess {
        name: name.to_owned(),
        args,
        env,
        calls,
    }
}

/// A duration in the shortest whole unit that represents it exactly (`90s`, `30m`, `1500ms`),
/// which both humantime and `tracelab`'s own parser read back.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 || !duration.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{}us", duration.as_micros().max(1));
    }
    if millis.is_multiple_of(3_600_000) {
        format!("{}h", millis / 3_600_000)
    } else if millis.is_multiple_of(60_000) {
        format!("{}m", millis / 60_000)
    } else if millis.is_multiple_of(1_000) {
        format!("{}s", millis / 1_000)
    } else {
        format!("{millis}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_follow_the_contract() {
        assert_eq!(peer_env_var("payment"), "TRACELAB_PEER_PAYMENT");
        assert_eq!(
            peer_env_var("product-catalog"),
            "TRACELAB_PEER_PRODUCT_CATALOG"
        );
        assert_eq!(target_env_var("frontend"), "TRACELAB_TARGET_FRONTEND");
    }

    #[test]
    fn scenario_paths_keep_only_the_file_name() {
        assert_eq!(
            scenario_path_in_image("scenarios/quickstart.yaml"),
            "/scenarios/quickstart.yaml"
        );
        assert_eq!(
            scenario_path_in_image("quickstart.yaml"),
            "/scenarios/quickstart.yaml"
        );
    }

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(1800)), "30m");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_micros(250)), "250us");
    }

    #[test]
    fn resource_attribute_values_are_encoded() {
        assert_eq!(encode_attribute_value("quickstart"), "quickstart");
        assert_eq!(
            encode_attribute_value("black friday, 2x"),
            "black%20friday%2C%202x"
        );
        assert_eq!(encode_attribute_value("50%"), "50%25");
        // Kubernetes' `$(VAR)` references must survive, they are expanded later.
        assert_eq!(encode_attribute_value("$(K8S_POD_NAME)"), "$(K8S_POD_NAME)");
    }

    #[test]
    fn head_sampling_from_ratio() {
        assert_eq!(HeadSampling::from_ratio(1.0), HeadSampling::AlwaysOn);
        assert_eq!(HeadSampling::from_ratio(0.25), HeadSampling::Ratio(0.25));
        assert_eq!(HeadSampling::from_ratio(-1.0), HeadSampling::Ratio(0.0));
    }
}
