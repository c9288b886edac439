//! `compose/docker-compose.yaml` as docker compose reads it: the lab services and the load
//! generator, their commands, environment, user, volumes, health checks and start order.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::files::{
    Health, Project, Volume, Workload, WorkloadKind, base_env, host_of, scalar, set, strings,
};
use super::image::Image;

/// The lab services and load generator of a compose file, in an order that honours
/// `depends_on`; the Collector is the embedded receiver, started before all of them.
pub fn compose_project(path: &Path, image: &Image) -> Project {
    let text = std::fs::read_to_string(path).expect("the compose file is readable");
    let doc: Value = serde_saphyr::from_str(&text).expect("the compose file parses");
    let services = doc["services"].as_object().expect("services");
    let lab: BTreeMap<&String, &Value> = services
        .iter()
        .filter(|(_, s)| {
            s["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("tracelab:"))
        })
        .collect();
    let mut workloads = Vec::new();
    let mut collector_names = Vec::new();
    for (name, service) in &lab {
        let user = image.ids(service["user"].as_str());
        let mut env = base_env(image, name, user.0);
        match &service["environment"] {
            Value::Object(map) => map.iter().for_each(|(k, v)| set(&mut env, k, scalar(v))),
            Value::Array(items) => items.iter().filter_map(Value::as_str).for_each(|item| {
                let (k, v) = item.split_once('=').unwrap_or((item, ""));
                set(&mut env, k, v.to_owned());
            }),
            _ => {}
        }
        if let Some((_, endpoint)) = env.iter().find(|(k, _)| k == "OTEL_EXPORTER_OTLP_ENDPOINT") {
            let host = host_of(endpoint);
            assert!(
                services
                    .get(&host)
                    .and_then(|s| s["image"].as_str())
                    .is_some_and(|i| i.starts_with("otel/opentelemetry-collector")),
                "{name} exports to {host}, which is not the stack's Collector"
            );
            if !collector_names.contains(&host) {
                collector_names.push(host);
            }
        }
        let mut argv = match &service["entrypoint"] {
            Value::Null => image.entrypoint.clone(),
            other => strings(other),
        };
        argv.extend(match &service["command"] {
            Value::Null => image.cmd.clone(),
            other => strings(other),
        });
        let mut volumes = Vec::new();
        for volume in strings(&service["volumes"]) {
            let parts: Vec<&str> = volume.split(':').collect();
            assert!(
                parts.len() >= 2 && !parts[0].starts_with(['.', '/']),
                "{name}: the simulation mounts named volumes, not `{volume}`"
            );
            let writable = parts.get(2) != Some(&"ro");
            let key = format!("named-{}", parts[0]);
            volumes.push((parts[1].to_owned(), Volume::FromImage { key }, writable));
        }
        // The image's VOLUMEs get anonymous volumes where nothing else is mounted.
        for target in &image.volumes {
            if !volumes.iter().any(|(t, _, _)| t == target) {
                let key = format!("anonymous-{name}{}", target.replace('/', "-"));
                volumes.push((target.clone(), Volume::FromImage { key }, true));
            }
        }
        let mut depends_on = Vec::new();
        let dependencies: Vec<(String, String)> = match &service["depends_on"] {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k.clone(), scalar(&v["condition"])))
                .collect(),
            other => strings(other)
                .into_iter()
                .map(|k| (k, "service_started".to_owned()))
                .collect(),
        };
        for (dependency, condition) in dependencies {
            let simulated = lab.contains_key(&dependency);
            assert!(
                simulated || collector_names.contains(&dependency),
                "{name} depends on {dependency}, which is neither a lab service nor the Collector"
            );
            if condition == "service_healthy" {
                assert!(simulated, "{name} waits for {dependency}'s health");
                depends_on.push(dependency);
            }
        }
        let health = match strings(&service["healthcheck"]["test"]).split_first() {
            Some((kind, rest)) if kind == "CMD" => Health::Command(rest.to_vec()),
            Some((kind, rest)) if kind == "CMD-SHELL" => {
                Health::Command(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
            }
            _ => Health::None,
        };
        let kind = if argv.iter().any(|a| a == "load") {
            WorkloadKind::Load
        } else {
            WorkloadKind::Service
        };
        workloads.push(Workload {
            name: (*name).clone(),
            kind,
            pod: (*name).clone(),
            names: vec![(*name).clone()],
            argv,
            env,
            user,
            workdir: service["working_dir"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| image.workdir.clone()),
            read_only: service["read_only"].as_bool() == Some(true),
            volumes,
            health,
            depends_on,
        });
    }
    Project {
        workloads: start_order(workloads),
        collector_names,
    }
}

/// Workloads ordered so that each comes after those it waits for.
fn start_order(mut pending: Vec<Workload>) -> Vec<Workload> {
    let mut ordered: Vec<Workload> = Vec::new();
    while !pending.is_empty() {
        let index = pending
            .iter()
            .position(|w| {
                w.depends_on
                    .iter()
                    .all(|d| ordered.iter().any(|o| &o.name == d))
            })
            .expect("depends_on has no cycle");
        ordered.push(pending.remove(index));
    }
    ordered
}
