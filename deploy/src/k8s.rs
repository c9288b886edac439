//! Kubernetes manifests for a scenario: a Namespace, a ConfigMap holding the scenario file, a
//! Deployment and a Service per scenario service and the load generator as a Job.
//!
//! A service with `instances:` overrides gets one more Deployment of one replica per
//! overridden instance (`checkout-instance-2`, started with `TRACELAB_INSTANCE=2`, so it runs
//! that instance's version, latency and errors and takes the faults aimed at it), and its
//! main Deployment runs the remaining replicas as written. The Service selects them all; the
//! cluster, not the scenario's `balance:` policy, spreads the calls over them.
//!
//! The manifests do not include an OpenTelemetry Collector: clusters usually have one (or get
//! one from the Collector's Helm chart), and the lab only needs its OTLP endpoint, which
//! defaults to `otel-collector.<namespace>:4317`. docs/kubernetes.md shows how to install one.

use std::time::Duration;

use tracelab_scenario::Scenario;

use crate::compose::default_image;
use crate::lab::{
    ADMIN_PORT, HTTP_PORT, HeadSampling, IMAGE_USER_ID, INSTANCE_ENV, LabProcess, OtelSettings,
    WORK_DIR_IN_IMAGE, load_process, service_process,
};
use crate::yaml::{self, Node};

/// Where the ConfigMap with the scenario is mounted in every container.
const SCENARIO_MOUNT_DIR: &str = "/etc/tracelab";
/// The ConfigMap key, and so the file name, of the scenario.
const SCENARIO_KEY: &str = "scenario.yaml";
/// The name of the ConfigMap holding the scenario.
const SCENARIO_CONFIG_MAP: &str = "tracelab-scenario";
/// The pod label telling apart the Deployments of one service: `shared` for the replicas
/// that run the service as written, the index for an overridden instance. Only services with
/// `instances:` overrides carry it.
const INSTANCE_LABEL: &str = "tracelab.dev/instance";
/// The name of the load generator's Job unless a scenario service already has it.
const LOADGEN_NAME: &str = "loadgen";
/// The volume over the image's working directory in the load generator's pod, where
/// `tracelab load` writes its run directory (the root filesystem is read-only).
const RUNS_VOLUME: &str = "runs";

/// How [`render_k8s`] shapes the manifests.
#[derive(Debug, Clone, PartialEq)]
pub struct K8sOptions {
    /// The namespace everything is created in; the manifests create it too.
    pub namespace: String,
    /// The lab image. A locally built `tracelab:<version>` has to be loaded into the cluster
    /// first (`kind load docker-image`, `k3d image import`) or pushed to a registry.
    pub image: String,
    /// The containers' `imagePullPolicy`; `IfNotPresent` lets a loaded local image be used.
    pub image_pull_policy: String,
    /// The OTLP gRPC endpoint; `http://otel-collector.<namespace>:4317` when absent.
    pub collector_endpoint: Option<String>,
    /// How long the load Job runs; the scenario's own duration when absent.
    pub load_duration: Option<Duration>,
    /// Head sampling at the load generator, the root of every trace.
    pub head_sampling: HeadSampling,
}

impl Default for K8sOptions {
    fn default() -> Self {
        K8sOptions {
            namespace: "tracelab".to_owned(),
            image: default_image(),
            image_pull_policy: "IfNotPresent".to_owned(),
            collector_endpoint: None,
            load_duration: None,
            head_sampling: HeadSampling::AlwaysOn,
        }
    }
}

/// Renders the manifests as one multi-document YAML stream, ready for `kubectl apply -f -`.
/// `scenario_yaml` is the scenario file's text, stored verbatim in the ConfigMap so the pods
/// run exactly the file that was rendered.
pub fn render_k8s(scenario: &Scenario, scenario_yaml: &str, options: &K8sOptions) -> String {
    let namespace = options.namespace.as_str();
    let scenario_label = label_value(&scenario.name);
    let scenario_path = format!("{SCENARIO_MOUNT_DIR}/{SCENARIO_KEY}");
    let otel = OtelSettings {
        endpoint: options
            .collector_endpoint
            .clone()
            .unwrap_or_else(|| format!("http://otel-collector.{namespace}:4317")),
        protocol: "grpc".to_owned(),
        root_sampler: options.head_sampling,
        // Kubernetes expands `$(VAR)` from variables defined earlier in the same list; the
        // downward-API variables come first for that reason (see `downward_env`).
        resource_attributes: vec![
            ("service.namespace".to_owned(), scenario.name.clone()),
            (
                "deployment.environment.name".to_owned(),
                "kubernetes".to_owned(),
            ),
            (
                "k8s.namespace.name".to_owned(),
                "$(K8S_NAMESPACE_NAME)".to_owned(),
            ),
            ("k8s.pod.name".to_owned(), "$(K8S_POD_NAME)".to_owned()),
        ],
    };
    let url_of = |service: &str| format!("http://{service}:{HTTP_PORT}");

    let mut documents = vec![
        Node::map()
            .with("apiVersion", "v1")
            .with("kind", "Namespace")
            .with("metadata", Node::map().with("name", namespace)),
        object(
            "v1",
            "ConfigMap",
            metadata(SCENARIO_CONFIG_MAP, namespace, &scenario_label, "scenario"),
        )
        .with("data", Node::map().with(SCENARIO_KEY, scenario_yaml)),
    ];
    for (name, service) in &scenario.services {
        let process = service_process(scenario, name, &scenario_path, &url_of, &otel);
        let overridden: Vec<u32> = service
            .instances
            .keys()
            .map(|index| index.0)
            .filter(|&index| index < service.replicas)
            .collect();
        let shared = service
            .replicas
            .saturating_sub(u32::try_from(overridden.len()).unwrap_or(u32::MAX));
        let track = |value: &str| (!overridden.is_empty()).then(|| value.to_owned());
        if shared > 0 || overridden.is_empty() {
            let shape = Shape {
                object: name.clone(),
                instance: track("shared"),
                replicas: shared,
            };
            documents.push(deployment(
                &process,
                &shape,
                namespace,
                &scenario_label,
                options,
            ));
        }
        for index in overridden {
            let mut own = process.clone();
            own.env.push((INSTANCE_ENV.to_owned(), index.to_string()));
            let shape = Shape {
                object: format!("{name}-instance-{index}"),
                instance: Some(index.to_string()),
                replicas: 1,
            };
            documents.push(deployment(
                &own,
                &shape,
                namespace,
                &scenario_label,
                options,
            ));
        }
        documents.push(service_manifest(name, namespace, &scenario_label));
    }
    let mut loadgen = LOADGEN_NAME.to_owned();
    while scenario.services.contains_key(&loadgen) {
        loadgen = format!("tracelab-{loadgen}");
    }
    let load = load_process(
        scenario,
        &loadgen,
        &scenario_path,
        &url_of,
        options.load_duration,
        &otel,
    );
    documents.push(job(&load, namespace, &scenario_label, options));

    let mut out = String::new();
    out.push_str(&format!(
        "# tracelab lab for scenario `{}`: apply with `kubectl apply -f <this file>`.\n",
        scenario.name.replace('\n', " ")
    ));
    out.push_str("# Generated by `tracelab render k8s`; see docs/kubernetes.md.\n");
    for document in &documents {
        out.push_str("---\n");
        out.push_str(&yaml::to_string(document));
    }
    out
}

/// A Kubernetes object: its API version, kind and metadata; the rest is added with `with`.
fn object(api_version: &str, kind: &str, metadata: Node) -> Node {
    Node::map()
        .with("apiVersion", api_version)
        .with("kind", kind)
        .with("metadata", metadata)
}

fn metadata(name: &str, namespace: &str, scenario_label: &str, component: &str) -> Node {
    Node::map()
        .with("name", name)
        .with("namespace", namespace)
        .with("labels", labels(name, scenario_label, component))
}

fn labels(name: &str, scenario_label: &str, component: &str) -> Node {
    Node::map()
        .with("app.kubernetes.io/name", name)
        .with("app.kubernetes.io/component", component)
        .with("app.kubernetes.io/part-of", "tracelab")
        .with("tracelab.dev/scenario", scenario_label)
}

fn selector(name: &str) -> Node {
    Node::map()
        .with("app.kubernetes.io/name", name)
        .with("app.kubernetes.io/part-of", "tracelab")
}

/// The pod name and namespace from the downward API, for the resource attributes.
fn downward_env() -> Vec<Node> {
    let field = |name: &str, path: &str| {
        Node::map().with("name", name).with(
            "valueFrom",
            Node::map().with("fieldRef", Node::map().with("fieldPath", path)),
        )
    };
    vec![
        field("K8S_NAMESPACE_NAME", "metadata.namespace"),
        field("K8S_POD_NAME", "metadata.name"),
    ]
}

fn container_env(process: &LabProcess) -> Node {
    let mut env = downward_env();
    env.extend(
        process
            .env
            .iter()
            .map(|(name, value)| Node::map().with("name", name).with("value", value)),
    );
    Node::Seq(env)
}

fn scenario_volume() -> Node {
    Node::map()
        .with("name", "scenario")
        .with("configMap", Node::map().with("name", SCENARIO_CONFIG_MAP))
}

fn scenario_mount() -> Node {
    Node::map()
        .with("name", "scenario")
        .with("mountPath", SCENARIO_MOUNT_DIR)
        .with("readOnly", true)
}

/// The pod runs as the image's user, whatever the image says, and never as root.
fn pod_security() -> Node {
    Node::map()
        .with("runAsNonRoot", true)
        .with("runAsUser", IMAGE_USER_ID)
        .with("runAsGroup", IMAGE_USER_ID)
}

/// A lab process writes nothing outside its volumes, so its root filesystem is read-only.
fn container_security() -> Node {
    Node::map()
        .with("readOnlyRootFilesystem", true)
        .with("allowPrivilegeEscalation", false)
        .with(
            "capabilities",
            Node::map().with("drop", Node::strings(["ALL"])),
        )
}

/// A container of the lab's image: its name, the image and its pull policy.
fn container(name: &str, options: &K8sOptions) -> Node {
    Node::map()
        .with("name", name)
        .with("image", options.image.as_str())
        .with("imagePullPolicy", options.image_pull_policy.as_str())
}

/// The container that runs `process`: the lab's image with the process's arguments and
/// environment.
fn process_container(process: &LabProcess, options: &K8sOptions) -> Node {
    container(&process.name, options)
        .with("args", Node::strings(process.args.iter().cloned()))
        .with("env", container_env(process))
}

/// One Deployment of a service: its object name, the value of [`INSTANCE_LABEL`] on its pods
/// (none for a service without overrides) and how many replicas it runs.
struct Shape {
    object: String,
    instance: Option<String>,
    replicas: u32,
}

fn deployment(
    process: &LabProcess,
    shape: &Shape,
    namespace: &str,
    scenario_label: &str,
    options: &K8sOptions,
) -> Node {
    let name = process.name.as_str();
    let (mut pod_labels, mut pod_selector) =
        (labels(name, scenario_label, "lab-service"), selector(name));
    if let Some(instance) = &shape.instance {
        pod_labels = pod_labels.with(INSTANCE_LABEL, instance.as_str());
        pod_selector = pod_selector.with(INSTANCE_LABEL, instance.as_str());
    }
    let container = process_container(process, options)
        .with(
            "ports",
            Node::Seq(vec![
                Node::map()
                    .with("name", "http")
                    .with("containerPort", HTTP_PORT),
                Node::map()
                    .with("name", "admin")
                    .with("containerPort", ADMIN_PORT),
            ]),
        )
        .with(
            "readinessProbe",
            Node::map()
                .with("tcpSocket", Node::map().with("port", "http"))
                .with("periodSeconds", 5i64),
        )
        .with(
            "resources",
            Node::map()
                .with(
                    "requests",
                    Node::map().with("cpu", "50m").with("memory", "32Mi"),
                )
                .with("limits", Node::map().with("memory", "256Mi")),
        )
        .with("securityContext", container_security())
        .with("volumeMounts", Node::Seq(vec![scenario_mount()]));
    object(
        "apps/v1",
        "Deployment",
        metadata(&shape.object, namespace, scenario_label, "lab-service"),
    )
    .with(
        "spec",
        Node::map()
            .with("replicas", shape.replicas)
            .with("selector", Node::map().with("matchLabels", pod_selector))
            .with(
                "template",
                Node::map()
                    .with("metadata", Node::map().with("labels", pod_labels))
                    .with(
                        "spec",
                        Node::map()
                            .with("securityContext", pod_security())
                            .with("containers", Node::Seq(vec![container]))
                            .with("volumes", Node::Seq(vec![scenario_volume()])),
                    ),
            ),
    )
}

fn service_manifest(name: &str, namespace: &str, scenario_label: &str) -> Node {
    let port = |port_name: &str, port: u16| {
        Node::map()
            .with("name", port_name)
            .with("port", port)
            .with("targetPort", port_name)
    };
    object(
        "v1",
        "Service",
        metadata(name, namespace, scenario_label, "lab-service"),
    )
    .with(
        "spec",
        Node::map()
            .with("type", "ClusterIP")
            .with("selector", selector(name))
            .with(
                "ports",
                Node::Seq(vec![port("http", HTTP_PORT), port("admin", ADMIN_PORT)]),
            ),
    )
}

/// The load generator. An init container waits until every entry service accepts connections,
/// so that a single `kubectl apply` does not start the load against pods still starting.
fn job(process: &LabProcess, namespace: &str, scenario_label: &str, options: &K8sOptions) -> Node {
    let name = process.name.as_str();
    let wait_script = process
        .calls
        .iter()
        .map(|entry| {
            format!(
                "until (exec 3<>/dev/tcp/{entry}/{HTTP_PORT}) 2>/dev/null; do echo waiting for {entry}; sleep 2; done"
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let wait = container("wait-for-entries", options)
        .with(
            "command",
            Node::strings(["bash", "-c", &format!("{wait_script}\n")]),
        )
        .with("securityContext", container_security());
    // The run directory (`runs/...` under the image's working directory) lives in an
    // emptyDir, gone with the pod; the summary stays in `kubectl logs job/<name>`.
    let container = process_container(process, options)
        .with("securityContext", container_security())
        .with(
            "volumeMounts",
            Node::Seq(vec![
                scenario_mount(),
                Node::map()
                    .with("name", RUNS_VOLUME)
                    .with("mountPath", WORK_DIR_IN_IMAGE),
            ]),
        );
    let volumes = vec![
        scenario_volume(),
        Node::map()
            .with("name", RUNS_VOLUME)
            .with("emptyDir", Node::map()),
    ];
    object(
        "batch/v1",
        "Job",
        metadata(name, namespace, scenario_label, "load-generator"),
    )
    .with(
        "spec",
        Node::map().with("backoffLimit", 0i64).with(
            "template",
            Node::map()
                .with(
                    "metadata",
                    Node::map().with("labels", labels(name, scenario_label, "load-generator")),
                )
                .with(
                    "spec",
                    Node::map()
                        .with("restartPolicy", "Never")
                        .with("securityContext", pod_security())
                        .with("initContainers", Node::Seq(vec![wait]))
                        .with("containers", Node::Seq(vec![container]))
                        .with("volumes", Node::Seq(volumes)),
                ),
        ),
    )
}

/// A Kubernetes label value from free text: at most 63 characters of `[A-Za-z0-9._-]`,
/// starting and ending with an alphanumeric character.
fn label_value(text: &str) -> String {
    let replaced: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    replaced
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("quickstart"), "quickstart");
        assert_eq!(label_value("Black Friday!"), "Black-Friday");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
        assert_eq!(label_value("--"), "");
    }
}
