//! The checked-in compose file is the renderer's output for the quickstart, and the rendered
//! stack wires the scenario's services the way the `tracelab` binary expects.

mod support;

use serde_json::Value;
use tracelab_deploy::{ComposeOptions, HeadSampling, render_compose, scenario_path_in_image};

const CHECKED_IN: &str = "compose/docker-compose.yaml";

fn render_quickstart(options: &ComposeOptions) -> (tracelab_scenario::Scenario, Value) {
    let (scenario, _) = support::load_scenario("quickstart.yaml");
    let text = render_compose(
        &scenario,
        &scenario_path_in_image("quickstart.yaml"),
        options,
    );
    let value: Value = serde_saphyr::from_str(&text).expect("the compose file is valid YAML");
    (scenario, value)
}

#[test]
fn checked_in_compose_file_is_the_rendered_quickstart() {
    let (scenario, _) = support::load_scenario("quickstart.yaml");
    let rendered = render_compose(
        &scenario,
        &scenario_path_in_image("scenarios/quickstart.yaml"),
        &ComposeOptions::default(),
    );
    let path = support::repo_root().join(CHECKED_IN);
    // Setting UPDATE_COMPOSE=1 rewrites the file, for when the CLI is not at hand.
    if std::env::var_os("UPDATE_COMPOSE").is_some() {
        std::fs::write(&path, &rendered).expect("writing the compose file");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == rendered,
        "{CHECKED_IN} is not the renderer's output for scenarios/quickstart.yaml. Regenerate it with\n  \
         cargo run -p tracelab -- render compose scenarios/quickstart.yaml > {CHECKED_IN}\n\
         (or UPDATE_COMPOSE=1 cargo test -p tracelab-deploy --test compose)"
    );
}

#[test]
fn every_scenario_service_runs_tracelab_svc_with_its_peers() {
    let (scenario, compose) = render_quickstart(&ComposeOptions::default());
    let services = &compose["services"];
    for (name, service) in &scenario.services {
        let container = &services[name.as_str()];
        assert_eq!(
            container["command"],
            serde_json::json!(["svc", "/scenarios/quickstart.yaml", "--service", name]),
            "{name}"
        );
        let env = &container["environment"];
        assert_eq!(env["TRACELAB_LISTEN"], "0.0.0.0:8080");
        assert_eq!(env["TRACELAB_ADMIN_LISTEN"], "0.0.0.0:9091");
        assert_eq!(
            env["OTEL_EXPORTER_OTLP_ENDPOINT"],
            "http://otel-collector:4317"
        );
        assert_eq!(env["OTEL_EXPORTER_OTLP_PROTOCOL"], "grpc");
        // Exactly the services this one calls get a peer variable, each with its URL.
        let mut expected: Vec<String> = service
            .routes
            .values()
            .flat_map(|route| {
                route
                    .steps
                    .iter()
                    .flat_map(|step| step.calls().iter().map(|c| c.service.clone()))
            })
            .collect();
        expected.sort();
        expected.dedup();
        let mut peers: Vec<String> = env
            .as_object()
            .expect("environment is a mapping")
            .iter()
            .filter(|(key, _)| key.starts_with("TRACELAB_PEER_"))
            .map(|(key, value)| {
                let peer = key
                    .trim_start_matches("TRACELAB_PEER_")
                    .to_ascii_lowercase()
                    .replace('_', "-");
                assert_eq!(
                    value.as_str(),
                    Some(format!("http://{peer}:8080").as_str()),
                    "{key}"
                );
                peer
            })
            .collect();
        peers.sort();
        assert_eq!(peers, expected, "peers of {name}");
    }
}

#[test]
fn checkout_peers_and_start_order() {
    let (_, compose) = render_quickstart(&ComposeOptions::default());
    let checkout = &compose["services"]["checkout"];
    assert_eq!(
        checkout["environment"]["TRACELAB_PEER_PAYMENT"],
        "http://payment:8080"
    );
    assert_eq!(
        checkout["environment"]["TRACELAB_PEER_CART"],
        "http://cart:8080"
    );
    // The Collector has no health check (its image holds only its binary); the services it
    // calls must answer before checkout starts.
    assert_eq!(
        checkout["depends_on"],
        serde_json::json!({
            "otel-collector": {"condition": "service_started"},
            "cart": {"condition": "service_healthy"},
            "payment": {"condition": "service_healthy"},
            "catalog": {"condition": "service_healthy"}
        })
    );
}

#[test]
fn lab_containers_are_read_only_with_health_checks_and_a_run_volume() {
    let (scenario, compose) = render_quickstart(&ComposeOptions::default());
    let services = &compose["services"];
    for name in scenario.services.keys() {
        let service = &services[name.as_str()];
        assert_eq!(service["read_only"], true, "{name}");
        assert_eq!(
            service["healthcheck"]["test"],
            serde_json::json!(["CMD", "bash", "-c", "exec 3<>/dev/tcp/localhost/8080"]),
            "{name}"
        );
    }
    let loadgen = &services["loadgen"];
    assert_eq!(loadgen["read_only"], true);
    // The run directory outlives the container in a named volume over the image's working
    // directory.
    assert_eq!(
        loadgen["volumes"],
        serde_json::json!(["loadgen-runs:/data"])
    );
    assert!(compose["volumes"]["loadgen-runs"].is_object());
    assert_eq!(
        loadgen["depends_on"]["frontend"]["condition"],
        "service_healthy"
    );
    for backend in ["prometheus", "grafana"] {
        assert_eq!(
            services[backend]["healthcheck"]["test"][0], "CMD",
            "{backend}"
        );
    }
}

#[test]
fn load_generator_targets_the_entry_services() {
    let (_, compose) = render_quickstart(&ComposeOptions::default());
    let loadgen = &compose["services"]["loadgen"];
    assert_eq!(
        loadgen["command"],
        serde_json::json!([
            "load",
            "/scenarios/quickstart.yaml",
            "--target",
            "frontend=http://frontend:8080",
            "--duration",
            "30m",
            "--no-progress"
        ])
    );
    assert_eq!(loadgen["restart"], "no");
    assert_eq!(
        loadgen["environment"]["OTEL_TRACES_SAMPLER"],
        "parentbased_always_on"
    );
}

#[test]
fn head_sampling_is_set_at_the_root_only() {
    let options = ComposeOptions {
        head_sampling: HeadSampling::Ratio(0.25),
        load_duration: None,
        ..ComposeOptions::default()
    };
    let (_, compose) = render_quickstart(&options);
    let loadgen = &compose["services"]["loadgen"]["environment"];
    assert_eq!(loadgen["OTEL_TRACES_SAMPLER"], "parentbased_traceidratio");
    assert_eq!(loadgen["OTEL_TRACES_SAMPLER_ARG"], "0.25");
    // Without an override the load runs for the scenario's own duration.
    let command = compose["services"]["loadgen"]["command"]
        .as_array()
        .expect("a list")
        .clone();
    assert!(
        command
            .windows(2)
            .any(|pair| pair[0] == "--duration" && pair[1] == "10s"),
        "{command:?}"
    );
    assert_eq!(
        compose["services"]["payment"]["environment"]["OTEL_TRACES_SAMPLER"],
        "parentbased_always_on"
    );
}

#[test]
fn backends_are_pinned_and_ports_bind_to_loopback() {
    let (_, compose) = render_quickstart(&ComposeOptions::default());
    let services = compose["services"]
        .as_object()
        .expect("services is a mapping");
    for backend in ["otel-collector", "jaeger", "tempo", "prometheus", "grafana"] {
        let image = services[backend]["image"].as_str().expect("an image");
        let tag = image.rsplit(':').next().unwrap_or_default();
        assert!(image.contains(':') && tag != "latest", "{backend}: {image}");
    }
    for (name, service) in services {
        for port in service["ports"].as_array().into_iter().flatten() {
            let port = port.as_str().expect("ports are strings");
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name} publishes {port} beyond loopback"
            );
        }
    }
}

#[test]
fn a_mounted_scenario_is_mounted_into_every_lab_container() {
    let options = ComposeOptions {
        scenario_mount: Some("../my-scenario.yaml".into()),
        build_context: None,
        ..ComposeOptions::default()
    };
    let (scenario, compose) = render_quickstart(&options);
    for name in scenario
        .services
        .keys()
        .map(String::as_str)
        .chain(["loadgen"])
    {
        let service = &compose["services"][name];
        let mut expected = vec!["../my-scenario.yaml:/scenarios/quickstart.yaml:ro"];
        if name == "loadgen" {
            expected.push("loadgen-runs:/data");
        }
        assert_eq!(service["volumes"], serde_json::json!(expected), "{name}");
        assert!(service.get("build").is_none(), "{name}");
    }
}

#[test]
fn every_scenario_renders_to_a_compose_file() {
    for name in support::all_scenarios() {
        let (scenario, _) = support::load_scenario(&name);
        let text = render_compose(
            &scenario,
            &scenario_path_in_image(&name),
            &ComposeOptions::default(),
        );
        let compose: Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|error| panic!("{name}: {error}"));
        let services = compose["services"].as_object().expect("services");
        // Five backends, one container per scenario service and the load generator.
        assert_eq!(services.len(), 5 + scenario.services.len() + 1, "{name}");
    }
}
