//! Replicas and per-instance overrides in the renders: compose runs identical replicas
//! (`deploy.replicas`, no host ports); Kubernetes runs the overridden instance (a canary) as a
//! Deployment of its own that the service's Service selects too.

mod support;

use serde_json::Value;
use tracelab_deploy::{
    ComposeOptions, K8sOptions, render_compose, render_k8s, scenario_path_in_image,
};

#[test]
fn compose_runs_replicas_without_host_ports() {
    let (scenario, _) = support::load_scenario("bad-canary.yaml");
    let text = render_compose(
        &scenario,
        &scenario_path_in_image("bad-canary.yaml"),
        &ComposeOptions::default(),
    );
    let stack: Value = serde_saphyr::from_str(&text).expect("valid YAML");
    let checkout = &stack["services"]["checkout"];
    assert_eq!(checkout["deploy"]["replicas"], 3);
    assert!(
        checkout.get("ports").is_none(),
        "three replicas cannot share a host port"
    );
    let payment = &stack["services"]["payment"];
    assert!(payment.get("deploy").is_none());
    assert!(payment["ports"].as_array().is_some_and(|p| p.len() == 2));
}

#[test]
fn every_compose_service_runs_its_replicas() {
    for name in support::all_scenarios() {
        let (scenario, _) = support::load_scenario(&name);
        let text = render_compose(
            &scenario,
            &scenario_path_in_image(&name),
            &ComposeOptions::default(),
        );
        let stack: Value = serde_saphyr::from_str(&text).expect("valid YAML");
        for (service_name, service) in &scenario.services {
            let rendered = &stack["services"][service_name.as_str()];
            match service.replicas {
                0 | 1 => assert!(rendered.get("deploy").is_none(), "{name}/{service_name}"),
                n => assert_eq!(rendered["deploy"]["replicas"], n, "{name}/{service_name}"),
            }
        }
    }
}

#[test]
fn kubernetes_runs_a_canary_as_a_deployment_of_its_own() {
    let (scenario, text) = support::load_scenario("bad-canary.yaml");
    let manifests = render_k8s(&scenario, &text, &K8sOptions::default());
    let documents: Vec<Value> = serde_saphyr::from_multiple(&manifests).expect("valid YAML");
    let deployment = |name: &str| {
        documents
            .iter()
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("a Deployment {name}"))
    };
    let env = |d: &Value| -> Vec<(String, String)> {
        d["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
            .iter()
            .filter_map(|e| Some((e["name"].as_str()?.into(), e["value"].as_str()?.into())))
            .collect()
    };
    let stable = deployment("checkout");
    let canary = deployment("checkout-instance-2");
    assert_eq!(stable["spec"]["replicas"], 2);
    assert_eq!(canary["spec"]["replicas"], 1);
    assert!(
        env(canary).contains(&("TRACELAB_INSTANCE".into(), "2".into())),
        "the canary runs instance 2's overrides"
    );
    assert!(env(stable).iter().all(|(k, _)| k != "TRACELAB_INSTANCE"));
    // The two never select each other's pods; the Service selects both.
    let selector = |d: &Value| d["spec"]["selector"]["matchLabels"].clone();
    assert_ne!(selector(stable), selector(canary));
    let service = documents
        .iter()
        .find(|d| d["kind"] == "Service" && d["metadata"]["name"] == "checkout")
        .expect("a Service");
    for d in [stable, canary] {
        let labels = &d["spec"]["template"]["metadata"]["labels"];
        for (key, value) in service["spec"]["selector"].as_object().expect("a selector") {
            assert_eq!(&labels[key], value);
        }
    }
    // A service without overrides is rendered as before: no instance label.
    let payment = deployment("payment");
    assert!(
        payment["spec"]["selector"]["matchLabels"]
            .get("tracelab.dev/instance")
            .is_none()
    );
}
