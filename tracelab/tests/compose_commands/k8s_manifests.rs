//! The manifests of `tracelab render k8s` as a kubelet reads them: the Deployments'
//! containers, then the Job's init containers and container, with `$(VAR)` expanded, the
//! downward-API variables set and the pod's security context applied.

use std::collections::BTreeMap;

use serde_json::Value;

use super::files::{
    Health, Project, Volume, Workload, WorkloadKind, base_env, host_of, scalar, set, strings,
};
use super::image::Image;

/// `$(VAR)` expanded from `vars` as the kubelet expands it; `$$` is a literal `$`, and an
/// unknown reference stays as written.
fn expand(text: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some((name, after)) = tail
            .strip_prefix("$(")
            .and_then(|t| t.split_once(')'))
            .filter(|(name, _)| vars.iter().any(|(k, _)| k == name))
        {
            let value = vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);
            out.push_str(value.map(String::as_str).unwrap_or_default());
            rest = after;
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The Deployments' containers, then the Job's init containers and container, of a rendered
/// manifest stream.
pub fn k8s_project(manifests: &str, image: &Image) -> Project {
    let docs: Vec<Value> = serde_saphyr::from_multiple(manifests).expect("the manifests parse");
    let of = |kind: &'static str| docs.iter().filter(move |d| d["kind"] == kind);
    let namespace = of("Namespace").next().expect("a Namespace")["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_owned();
    let config_maps: BTreeMap<String, Vec<(String, String)>> = of("ConfigMap")
        .map(|d| {
            let data = d["data"].as_object().expect("ConfigMap data");
            (
                scalar(&d["metadata"]["name"]),
                data.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
            )
        })
        .collect();
    let mut workloads = Vec::new();
    let mut collector_names = Vec::new();
    let pods = of("Deployment")
        .map(|d| (d, WorkloadKind::Service))
        .chain(of("Job").map(|d| (d, WorkloadKind::Load)));
    for (object, main_kind) in pods {
        let pod = scalar(&object["metadata"]["name"]);
        let spec = &object["spec"]["template"]["spec"];
        let labels = &object["spec"]["template"]["metadata"]["labels"];
        // A Service resolves, by every DNS form, to the pod whose labels it selects.
        let mut names = Vec::new();
        for service in of("Service") {
            let selector = service["spec"]["selector"].as_object().expect("a selector");
            if selector.iter().all(|(k, v)| &labels[k] == v) {
                let svc = scalar(&service["metadata"]["name"]);
                names.push(svc.clone());
                names.push(format!("{svc}.{namespace}"));
                names.push(format!("{svc}.{namespace}.svc"));
                names.push(format!("{svc}.{namespace}.svc.cluster.local"));
            }
        }
        let volumes: BTreeMap<String, Volume> = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                let name = scalar(&v["name"]);
                let volume = if v["emptyDir"].is_object() {
                    Volume::Empty {
                        key: format!("{pod}-{name}"),
                    }
                } else {
                    let map = scalar(&v["configMap"]["name"]);
                    Volume::Files(config_maps.get(&map).cloned().expect("a ConfigMap"))
                };
                (name, volume)
            })
            .collect();
        let containers = spec["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| (c, WorkloadKind::Init))
            .chain(
                spec["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| (c, main_kind)),
            );
        for (c, kind) in containers {
            let security = &c["securityContext"];
            let pod_security = &spec["securityContext"];
            let pick = |key: &str| security[key].as_u64().or(pod_security[key].as_u64());
            let (image_uid, image_gid) = image.ids(None);
            let uid = pick("runAsUser").map_or(image_uid, |u| u32::try_from(u).unwrap_or(0));
            let gid = pick("runAsGroup").map_or(image_gid, |g| u32::try_from(g).unwrap_or(0));
            if pod_security["runAsNonRoot"] == true {
                assert_ne!(
                    uid, 0,
                    "{pod}: runAsNonRoot, but the container runs as root"
                );
            }
            let mut env = base_env(image, &pod, uid);
            for var in c["env"].as_array().into_iter().flatten() {
                let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                    Some("metadata.name") => format!("{pod}-sim"),
                    Some("metadata.namespace") => namespace.clone(),
                    Some(other) => panic!("the simulation does not know fieldRef {other}"),
                    None => expand(&scalar(&var["value"]), &env),
                };
                set(&mut env, &scalar(&var["name"]), value);
            }
            if let Some((_, endpoint)) =
                env.iter().find(|(k, _)| k == "OTEL_EXPORTER_OTLP_ENDPOINT")
            {
                let host = host_of(endpoint);
                if !collector_names.contains(&host) {
                    collector_names.push(host);
                }
            }
            let (command, args) = (strings(&c["command"]), strings(&c["args"]));
            let mut argv = if command.is_empty() {
                image.entrypoint.clone()
            } else {
                command
            };
            argv.extend(if c["command"].is_null() && c["args"].is_null() {
                image.cmd.clone()
            } else {
                args
            });
            let argv = argv.iter().map(|a| expand(a, &env)).collect();
            let mounts = c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    let volume = volumes[&scalar(&m["name"])].clone();
                    let writable = m["readOnly"] != true && !matches!(volume, Volume::Files(_));
                    (scalar(&m["mountPath"]), volume, writable)
                })
                .collect();
            let health = match &c["readinessProbe"]["tcpSocket"]["port"] {
                Value::String(port) => Health::TcpPort(
                    c["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|p| p["name"] == port.as_str())
                        .and_then(|p| p["containerPort"].as_u64())
                        .and_then(|p| u16::try_from(p).ok())
                        .expect("the probe names a declared port"),
                ),
                Value::Number(port) => Health::TcpPort(
                    port.as_u64()
                        .and_then(|p| u16::try_from(p).ok())
                        .unwrap_or(0),
                ),
                _ => Health::None,
            };
            workloads.push(Workload {
                name: format!("{pod}-{}", scalar(&c["name"])),
                kind,
                pod: pod.clone(),
                names: names.clone(),
                argv,
                env,
                user: (uid, gid),
                workdir: c["workingDir"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| image.workdir.clone()),
                read_only: security["readOnlyRootFilesystem"] == true,
                volumes: mounts,
                health,
                depends_on: Vec::new(),
            });
        }
    }
    for name in &collector_names {
        assert!(
            !workloads.iter().any(|w| w.names.contains(name)),
            "the manifests do not contain the Collector"
        );
    }
    Project {
        workloads,
        collector_names,
    }
}
