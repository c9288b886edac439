#!/usr/bin/env python3
"""Checks an OpenTelemetry Collector configuration made of several files, as the Collector
merges them (`--config a.yaml --config b.yaml`: maps merge key by key, later files win).

It checks what the Collector would only find at startup, which needs docker to run:
- every receiver, processor, exporter, connector and extension a pipeline names is defined;
- every connector is used as an exporter in one pipeline and as a receiver in another;
- every defined component is used (an unused one is usually a typo of a used one);
- each pipeline has receivers and exporters, and its name starts with a signal type;
- no component uses a deprecated name (otlp exporter, otlphttp, spanmetrics, ...).

Usage: check_collector_config.py CONFIG [CONFIG...]
       check_collector_config.py --compose COMPOSE_FILE SERVICE
The second form takes the `--config` files from SERVICE's command in the compose file and
finds them on the host through the service's volumes, so the wiring is checked too.
"""

import os

import sys

import yaml

from verdict import verdict

SIGNALS = {"traces", "metrics", "logs", "profiles"}
KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")

# Old spellings the Collector still accepts as deprecated aliases, by kind.
DEPRECATED = {
    "exporters": {
        "otlp": "otlp_grpc",
        "otlphttp": "otlp_http",
        "prometheusremotewrite": "prometheus_remote_write",
    },
    "connectors": {"spanmetrics": "span_metrics"},
}


def merge(base, extra):
    """Merges like the Collector's confmap: maps recursively, anything else replaced."""
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return extra


def component_type(name):
    return name.split("/", 1)[0]


def check(config):
    problems = []
    defined = {kind: set((config.get(kind) or {}).keys()) for kind in KINDS}
    service = config.get("service") or {}
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        problems.append("service.pipelines is empty")

    used = {kind: set() for kind in KINDS}
    connector_as_exporter = set()
    connector_as_receiver = set()
    for pipeline, body in pipelines.items():
        body = body or {}
        signal = component_type(pipeline)
        if signal not in SIGNALS:
            problems.append(f"pipeline {pipeline}: name must start with one of {sorted(SIGNALS)}")
        for key in ("receivers", "exporters"):
            if not body.get(key):
                problems.append(f"pipeline {pipeline}: no {key}")
        for name in body.get("receivers") or []:
            if name in defined["connectors"]:
                connector_as_receiver.add(name)
                used["connectors"].add(name)
            elif name in defined["receivers"]:
                used["receivers"].add(name)
            else:
                problems.append(f"pipeline {pipeline}: receiver {name} is not defined")
        for name in body.get("processors") or []:
            if name in defined["processors"]:
                used["processors"].add(name)
            else:
                problems.append(f"pipeline {pipeline}: processor {name} is not defined")
        for name in body.get("exporters") or []:
            if name in defined["connectors"]:
                connector_as_exporter.add(name)
                used["connectors"].add(name)
            elif name in defined["exporters"]:
                used["exporters"].add(name)
            else:
                problems.append(f"pipeline {pipeline}: exporter {name} is not defined")

    for name in service.get("extensions") or []:
        if name in defined["extensions"]:
            used["extensions"].add(name)
        else:
            problems.append(f"service.extensions: {name} is not defined")

    for name in sorted(defined["connectors"]):
        if name not in connector_as_exporter:
            problems.append(f"connector {name} is never an exporter of a pipeline")
        if name not in connector_as_receiver:
            problems.append(f"connector {name} is never a receiver of a pipeline")
    for kind in KINDS:
        for name in sorted(defined[kind] - used[kind]):
            problems.append(f"{kind[:-1]} {name} is defined but not used")
    for kind, renames in DEPRECATED.items():
        for name in sorted(defined[kind]):
            new = renames.get(component_type(name))
            if new:
                problems.append(f"{kind[:-1]} {name}: deprecated name, use {new}")
    return problems


def paths_from_compose(compose_file, service_name):
    with open(compose_file, encoding="utf-8") as handle:
        compose = yaml.safe_load(handle) or {}
    service = (compose.get("services") or {}).get(service_name)
    if service is None:
        raise SystemExit(f"{compose_file}: no service {service_name}")
    base = os.path.dirname(os.path.abspath(compose_file))
    mounts = {}
    for volume in service.get("volumes") or []:
        parts = volume.split(":")
        if len(parts) >= 2:
            mounts[parts[1]] = os.path.normpath(os.path.join(base, parts[0]))
    command = service.get("command") or []
    if isinstance(command, str):
        command = command.split()
    paths = []
    for index, arg in enumerate(command):
        if arg.startswith("--config="):
            inside = arg.split("=", 1)[1]
        elif arg == "--config" and index + 1 < len(command):
            inside = command[index + 1]
        else:
            continue
        if inside not in mounts:
            raise SystemExit(f"{compose_file}: {service_name} reads {inside}, which no volume provides")
        paths.append(mounts[inside])
    if not paths:
        raise SystemExit(f"{compose_file}: {service_name} has no --config argument")
    return paths


def main(paths):
    if paths[:1] == ["--compose"] and len(paths) == 3:
        paths = paths_from_compose(paths[1], paths[2])
    if not paths:
        print("usage: check_collector_config.py CONFIG [CONFIG...] | --compose COMPOSE_FILE SERVICE", file=sys.stderr)
        return 2
    config = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle) or {}
        if not isinstance(document, dict):
            print(f"{path}: not a mapping", file=sys.stderr)
            return 1
        config = merge(config, document)
    return verdict(f"collector config ({' + '.join(paths)})", check(config), f"collector config ok: {' + '.join(paths)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
