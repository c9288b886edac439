//! The Kubernetes manifests are valid multi-document YAML with one Deployment and one Service
//! per scenario service.

mod support;

use serde_json::Value;
use tracelab_deploy::{K8sOptions, render_k8s};

fn documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(text).expect("the manifests are valid multi-document YAML")
}

fn of_kind<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents.iter().filter(|doc| doc["kind"] == kind).collect()
}

#[test]
fn every_scenario_gets_a_deployment_and_a_service_per_service() {
    for name in support::all_scenarios() {
        let (scenario, text) = support::load_scenario(&name);
        let manifests = render_k8s(&scenario, &text, &K8sOptions::default());
        let documents = documents(&manifests);

        assert_eq!(of_kind(&documents, "Namespace").len(), 1, "{name}");
        assert_eq!(of_kind(&documents, "Job").len(), 1, "{name}");
        let deployments = of_kind(&documents, "Deployment");
        let services = of_kind(&documents, "Service");
        // One Deployment per service, and one more per overridden instance.
        let overridden: usize = scenario.services.values().map(|s| s.instances.len()).sum();
        assert_eq!(
            deployments.len(),
            scenario.services.len() + overridden,
            "{name}"
        );
        assert_eq!(services.len(), scenario.services.len(), "{name}");
        for (service_name, service) in &scenario.services {
            let svc = services
                .iter()
                .find(|doc| doc["metadata"]["name"] == service_name.as_str())
                .unwrap_or_else(|| panic!("{name}: no Service for {service_name}"));
            let selects = |labels: &Value| {
                svc["spec"]["selector"]
                    .as_object()
                    .expect("a selector")
                    .iter()
                    .all(|(key, value)| &labels[key] == value)
            };
            // The Service selects the pods of every Deployment of the service, and of no other.
            let mine: Vec<&&Value> = deployments
                .iter()
                .filter(|d| selects(&d["spec"]["template"]["metadata"]["labels"]))
                .collect();
            assert!(
                mine.iter()
                    .any(|d| d["metadata"]["name"] == service_name.as_str()),
                "{name}: no Deployment for {service_name}"
            );
            let replicas: u64 = mine
                .iter()
                .map(|d| d["spec"]["replicas"].as_u64().expect("replicas"))
                .sum();
            assert_eq!(
                replicas,
                u64::from(service.replicas),
                "{name}/{service_name}"
            );
            for deployment in mine {
                let labels = &deployment["spec"]["template"]["metadata"]["labels"];
                for (key, value) in deployment["spec"]["selector"]["matchLabels"]
                    .as_object()
                    .expect("labels")
                {
                    assert_eq!(
                        &labels[key], value,
                        "{name}/{service_name}: selector must match the pod labels"
                    );
                }
            }
        }
        for doc in &documents {
            if doc["kind"] != "Namespace" {
                assert_eq!(
                    doc["metadata"]["namespace"], "tracelab",
                    "{name}: {}",
                    doc["kind"]
                );
            }
        }
    }
}

#[test]
fn config_map_holds_the_scenario_verbatim() {
    let (scenario, text) = support::load_scenario("quickstart.yaml");
    let documents = documents(&render_k8s(&scenario, &text, &K8sOptions::default()));
    let config_maps = of_kind(&documents, "ConfigMap");
    assert_eq!(config_maps.len(), 1);
    assert_eq!(
        config_maps[0]["data"]["scenario.yaml"].as_str(),
        Some(text.as_str())
    );
}

#[test]
fn replicas_come_from_the_scenario() {
    let (_, text) = support::load_scenario("quickstart.yaml");
    let scaled = text.replacen("  payment:\n", "  payment:\n    replicas: 3\n", 1);
    let scenario =
        tracelab_scenario::parse(&scaled, "scaled.yaml").expect("the scaled scenario parses");
    let documents = documents(&render_k8s(&scenario, &scaled, &K8sOptions::default()));
    let payment = of_kind(&documents, "Deployment")
        .into_iter()
        .find(|doc| doc["metadata"]["name"] == "payment")
        .expect("a payment Deployment");
    assert_eq!(payment["spec"]["replicas"], 3);
}

#[test]
fn containers_export_to_the_collector_of_the_namespace() {
    let (scenario, text) = support::load_scenario("quickstart.yaml");
    let options = K8sOptions {
        namespace: "shop-lab".into(),
        ..K8sOptions::default()
    };
    let documents = documents(&render_k8s(&scenario, &text, &options));
    let checkout = of_kind(&documents, "Deployment")
        .into_iter()
        .find(|doc| doc["metadata"]["name"] == "checkout")
        .expect("a checkout Deployment");
    let container = &checkout["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["args"],
        serde_json::json!([
            "svc",
            "/etc/tracelab/scenario.yaml",
            "--service",
            "checkout"
        ])
    );
    let env: Vec<(String, Value)> = container["env"]
        .as_array()
        .expect("env is a list")
        .iter()
        .map(|var| {
            (
                var["name"].as_str().unwrap_or_default().to_owned(),
                var["value"].clone(),
            )
        })
        .collect();
    let value_of = |name: &str| {
        env.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        value_of("OTEL_EXPORTER_OTLP_ENDPOINT"),
        "http://otel-collector.shop-lab:4317"
    );
    assert_eq!(value_of("TRACELAB_PEER_PAYMENT"), "http://payment:8080");
    // `$(K8S_POD_NAME)` only expands when that variable comes earlier in the list.
    let position = |name: &str| env.iter().position(|(key, _)| key == name).expect(name);
    assert!(position("K8S_POD_NAME") < position("OTEL_RESOURCE_ATTRIBUTES"));

    let job = of_kind(&documents, "Job")[0];
    let load = &job["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(
        load,
        &serde_json::json!([
            "load",
            "/etc/tracelab/scenario.yaml",
            "--target",
            "frontend=http://frontend:8080",
            "--duration",
            "10s",
            "--no-progress"
        ])
    );
}

#[test]
fn pods_run_as_the_image_user_on_a_read_only_root_with_a_run_volume() {
    let (scenario, text) = support::load_scenario("quickstart.yaml");
    let documents = documents(&render_k8s(&scenario, &text, &K8sOptions::default()));
    for doc in of_kind(&documents, "Deployment")
        .into_iter()
        .chain(of_kind(&documents, "Job"))
    {
        let spec = &doc["spec"]["template"]["spec"];
        assert_eq!(spec["securityContext"]["runAsUser"], 10001);
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
        for container in spec["containers"]
            .as_array()
            .into_iter()
            .chain(spec["initContainers"].as_array())
            .flatten()
        {
            assert_eq!(
                container["securityContext"]["readOnlyRootFilesystem"], true,
                "{}",
                container["name"]
            );
        }
    }
    // `tracelab load` writes its run directory under the image's working directory, /data:
    // an emptyDir there is the one writable place.
    let job = of_kind(&documents, "Job")[0];
    let spec = &job["spec"]["template"]["spec"];
    let mounts = spec["containers"][0]["volumeMounts"]
        .as_array()
        .expect("volume mounts");
    let runs = mounts
        .iter()
        .find(|m| m["mountPath"] == "/data")
        .expect("a volume over /data");
    let volume = spec["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == runs["name"])
        .expect("the mounted volume is declared");
    assert!(volume["emptyDir"].is_object(), "{volume}");
}
