#!/usr/bin/env python3
"""Checks the Grafana provisioning of the lab without running Grafana.

- datasource files parse, every datasource has a unique uid, name and a type;
- links between datasources (service map, traces to metrics, exemplars) name existing uids;
- dashboard provider files parse and their paths are where docker-compose.yaml mounts
  grafana/dashboards;
- every dashboard is valid JSON with a unique uid, unique panel ids, and every datasource it
  references (panel, target, template variable) is an existing uid of a matching type.

Usage: check_grafana.py GRAFANA_DIR COMPOSE_FILE
"""

import json
import os
import sys

import yaml

from verdict import verdict


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def yaml_files(directory):
    if not os.path.isdir(directory):
        return []
    return sorted(
        os.path.join(directory, name)
        for name in os.listdir(directory)
        if name.endswith((".yaml", ".yml"))
    )


def check_datasources(directory, problems):
    datasources = {}
    for path in yaml_files(directory):
        for source in load_yaml(path).get("datasources") or []:
            uid, name, kind = source.get("uid"), source.get("name"), source.get("type")
            if not uid or not name or not kind:
                problems.append(f"{path}: datasource {name or uid} needs name, uid and type")
                continue
            if uid in datasources:
                problems.append(f"{path}: datasource uid {uid} is defined twice")
            datasources[uid] = {"type": kind, "path": path, "source": source}
    if not datasources:
        problems.append(f"{directory}: no datasource defined")
    for uid, entry in datasources.items():
        json_data = entry["source"].get("jsonData") or {}
        linked = []
        for key in ("serviceMap", "tracesToMetrics", "tracesToLogsV2", "tracesToProfiles"):
            if isinstance(json_data.get(key), dict) and json_data[key].get("datasourceUid"):
                linked.append((key, json_data[key]["datasourceUid"]))
        for destination in json_data.get("exemplarTraceIdDestinations") or []:
            if destination.get("datasourceUid"):
                linked.append(("exemplarTraceIdDestinations", destination["datasourceUid"]))
        for key, target in linked:
            if target not in datasources:
                problems.append(f"{entry['path']}: datasource {uid}: {key} refers to unknown uid {target}")
    return datasources


def dashboard_mounts(compose_file):
    """Container paths where the compose file mounts a host directory named dashboards."""
    mounts = set()
    services = (load_yaml(compose_file).get("services") or {}).values()
    for service in services:
        for volume in service.get("volumes") or []:
            if isinstance(volume, str):
                parts = volume.split(":")
                if len(parts) >= 2 and os.path.basename(parts[0].rstrip("/")) == "dashboards":
                    mounts.add(parts[1].rstrip("/"))
    return mounts


def check_providers(directory, compose_file, problems):
    mounts = dashboard_mounts(compose_file)
    providers = 0
    for path in yaml_files(directory):
        for provider in load_yaml(path).get("providers") or []:
            providers += 1
            target = ((provider.get("options") or {}).get("path") or "").rstrip("/")
            if target not in mounts:
                problems.append(
                    f"{path}: provider {provider.get('name')} reads {target}, "
                    f"but {compose_file} mounts dashboards at {sorted(mounts) or 'no path'}"
                )
    if providers == 0:
        problems.append(f"{directory}: no dashboard provider")


def datasource_refs(node, where):
    """Yields (where, reference) for every `datasource` value in a dashboard."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and value is not None:
                yield where, value
            else:
                label = node.get("title") or node.get("name") or node.get("refId") or where
                yield from datasource_refs(value, f"{where} / {label}" if label != where else where)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_refs(item, where)


def all_panels(panels):
    for panel in panels or []:
        yield panel
        yield from all_panels(panel.get("panels"))


def check_dashboards(directory, datasources, problems):
    uids = {}
    files = sorted(name for name in os.listdir(directory) if name.endswith(".json")) if os.path.isdir(directory) else []
    if not files:
        problems.append(f"{directory}: no dashboard")
    for name in files:
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as handle:
                dashboard = json.load(handle)
        except json.JSONDecodeError as error:
            problems.append(f"{path}: not JSON: {error}")
            continue
        uid = dashboard.get("uid")
        if not uid or not dashboard.get("title"):
            problems.append(f"{path}: a dashboard needs a uid and a title")
        elif uid in uids:
            problems.append(f"{path}: uid {uid} is also the uid of {uids[uid]}")
        else:
            uids[uid] = path
        ids = [panel.get("id") for panel in all_panels(dashboard.get("panels"))]
        duplicates = sorted({i for i in ids if ids.count(i) > 1 and i is not None})
        if duplicates:
            problems.append(f"{path}: duplicate panel ids {duplicates}")
        if not ids:
            problems.append(f"{path}: no panel")
        for where, ref in datasource_refs(dashboard, name):
            if isinstance(ref, str):
                # A bare string is a datasource name or a variable; ours always use {type, uid}.
                problems.append(f"{path}: {where}: datasource given as a bare string {ref!r}")
                continue
            if not isinstance(ref, dict):
                problems.append(f"{path}: {where}: datasource {ref!r} is not an object")
                continue
            uid = ref.get("uid")
            if uid is None or str(uid).startswith("$") or uid == "-- Grafana --":
                continue
            if uid not in datasources:
                problems.append(f"{path}: {where}: unknown datasource uid {uid}")
            elif ref.get("type") and ref["type"] != datasources[uid]["type"]:
                problems.append(
                    f"{path}: {where}: datasource {uid} has type {datasources[uid]['type']}, not {ref['type']}"
                )
    return len(files)


def main(args):
    if len(args) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    grafana_dir, compose_file = args
    problems = []
    datasources = check_datasources(os.path.join(grafana_dir, "provisioning", "datasources"), problems)
    check_providers(os.path.join(grafana_dir, "provisioning", "dashboards"), compose_file, problems)
    count = check_dashboards(os.path.join(grafana_dir, "dashboards"), datasources, problems)
    return verdict("grafana", problems, f"grafana ok: {len(datasources)} datasources, {count} dashboards")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
