#!/usr/bin/env python3
"""Checks that every metric and label the Grafana dashboards and datasources query is one the
stack's backends emit, under the name Prometheus stores it.

The instruments come from grafana/upstream-metrics.yaml (read from the backends' sources, cited
in docs/compose.md). Their Prometheus names are derived here from the compose files, the way
the pinned versions translate them:

- the Collector's own metrics: its Prometheus reader settings (service.telemetry.metrics.readers
  in compose/otel-collector/config.yaml). Collector 0.157.0 fills in an unset without_type_suffix
  or without_units as true; both true select the NoTranslation strategy (names as the
  instruments have them, labels with dots), anything else NoUTF8EscapingWithSuffixes (`_total`
  on counters, unit suffixes, labels with dots). Prometheus then escapes dotted names to
  underscores only when the scrape job asks for it (metric_name_escaping_scheme: underscores;
  Prometheus 3 asks for UTF-8 by default);
- the span metrics: the span_metrics connector's namespace, dimensions and histogram unit, and
  the translation_strategy of the Prometheus exporter it feeds;
- Tempo's service-graph metrics: named by Tempo itself, plus its external labels.

Usage: check_metric_names.py REPO_DIR
"""

import json
import os
import re
import sys

import yaml

from verdict import verdict

UNIT_WORDS = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "µs": "microseconds",
    "By": "bytes",
    "min": "minutes",
    "h": "hours",
}
# Labels every series may have: the scrape target's, and a histogram bucket's bound.
ALWAYS = {"job", "instance"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
}


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def escape(name):
    """Prometheus' underscore escaping: every character outside the legacy set becomes `_`."""
    return re.sub(r"[^a-zA-Z0-9_:]", "_", name)


def with_suffixes(name, kind, unit):
    """The name with unit and type suffixes, as the OpenTelemetry-to-Prometheus translation
    appends them (annotations in braces carry no unit)."""
    unit = re.sub(r"\{[^}]*\}", "", unit or "")
    word = UNIT_WORDS.get(unit, escape(unit) if unit and unit != "1" else "")
    if kind == "gauge" and unit == "1":
        word = "ratio"
    if word and not name.endswith("_" + word):
        name = f"{name}_{word}"
    if kind == "counter" and not name.endswith("_total"):
        name += "_total"
    return name


def series(name, kind, labels):
    """The series names and label sets one metric is stored as."""
    labels = set(labels) | ALWAYS
    if kind == "histogram":
        return {f"{name}_bucket": labels | {"le"}, f"{name}_sum": labels, f"{name}_count": labels}
    return {name: labels}


def translate(instrument, kind, unit, attributes, strategy, scrape_escapes):
    """(metric name, labels) of one instrument under an exporter strategy and scrape escaping."""
    suffixes = strategy in ("UnderscoreEscapingWithSuffixes", "NoUTF8EscapingWithSuffixes")
    exporter_escapes = strategy.startswith("UnderscoreEscaping")
    name = escape(instrument) if exporter_escapes else instrument
    if suffixes:
        name = with_suffixes(name, kind, unit)
    escaped = exporter_escapes or scrape_escapes
    labels = [escape(a) if escaped else a for a in attributes]
    return (escape(name) if escaped else name), labels


def collector_strategy(config):
    """The translation strategy of the Collector's Prometheus reader (otelconf v0.3.0 as the
    Collector 0.157.0 configures it)."""
    readers = (((config.get("service") or {}).get("telemetry") or {}).get("metrics") or {}).get("readers") or []
    for reader in readers:
        prometheus = (((reader or {}).get("pull") or {}).get("exporter") or {}).get("prometheus")
        if prometheus is not None:
            without_suffix = prometheus.get("without_type_suffix", True)
            without_units = prometheus.get("without_units", True)
            if without_suffix and without_units:
                return "NoTranslation"
            return "NoUTF8EscapingWithSuffixes"
    raise SystemExit("the Collector config has no Prometheus pull reader for its own metrics")


def scrape_escapes(prometheus, target):
    for job in prometheus.get("scrape_configs") or []:
        for static in job.get("static_configs") or []:
            if target in (static.get("targets") or []):
                scheme = job.get("metric_name_escaping_scheme")
                if scheme is None:
                    scheme = (prometheus.get("global") or {}).get("metric_name_escaping_scheme", "allow-utf-8")
                return scheme == "underscores"
    raise SystemExit(f"compose/prometheus/prometheus.yaml does not scrape {target}")


def known_series(repo):
    upstream = load_yaml(os.path.join(repo, "grafana/upstream-metrics.yaml"))
    collector = load_yaml(os.path.join(repo, "compose/otel-collector/config.yaml"))
    prometheus = load_yaml(os.path.join(repo, "compose/prometheus/prometheus.yaml"))
    tempo = load_yaml(os.path.join(repo, "compose/tempo/tempo.yaml"))
    known = {}
    values = {}

    strategy = collector_strategy(collector)
    escapes = scrape_escapes(prometheus, "otel-collector:8888")
    for item in upstream["collector"]:
        name, labels = translate(item["instrument"], item["type"], item["unit"], item["attributes"], strategy, escapes)
        known.update(series(name, item["type"], labels))

    exporters = collector.get("exporters") or {}
    span_exports = [
        (name, body or {}) for name, body in exporters.items() if name.split("/")[0] == "prometheus"
    ]
    connector = (collector.get("connectors") or {}).get("span_metrics") or {}
    namespace = connector.get("namespace", "traces.span.metrics")
    dimensions = [d["name"] for d in connector.get("dimensions") or []]
    unit = (connector.get("histogram") or {}).get("unit", "ms")
    for exporter, body in span_exports:
        endpoint = body.get("endpoint", "")
        port = endpoint.rsplit(":", 1)[-1]
        strategy = body.get("translation_strategy", "UnderscoreEscapingWithSuffixes")
        escapes = scrape_escapes(prometheus, f"otel-collector:{port}")
        attributes = upstream["span_metrics_attributes"] + dimensions
        for item in upstream["span_metrics"]:
            item_unit = unit if item["unit"] == "configured" else item["unit"]
            name, labels = translate(f"{namespace}.{item['instrument']}", item["type"], item_unit, attributes, strategy, escapes)
            known.update(series(name, item["type"], labels))
        for key, allowed in (upstream.get("values") or {}).items():
            values[escape(key) if strategy.startswith("UnderscoreEscaping") else key] = set(map(str, allowed))

    external = set(((tempo.get("metrics_generator") or {}).get("registry") or {}).get("external_labels") or {})
    for item in upstream["tempo"]:
        known.update(series(item["name"], "gauge" if item["type"] == "counter" else item["type"], set(item["labels"]) | external))
    for key, allowed in (upstream.get("values") or {}).items():
        values.setdefault(escape(key), set(map(str, allowed)))
    return known, values


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def check_expression(expr, known, values):
    """Problems with one PromQL expression: unknown metrics, labels or label values."""
    problems = []
    metrics = []
    # label_values(metric, label) in template variables.
    for metric, label in re.findall(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*([A-Za-z_]\w*)\s*\)", expr):
        metrics.append(metric)
        if metric in known and label not in known[metric]:
            problems.append(f"{metric} has no label {label}")
    selectors = []
    for match in re.finditer(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}", expr):
        selectors.append((match.group(1), match.group(2)))
    grouping = re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
    bare = strip_strings(expr)
    bare = re.sub(r"label_values\([^)]*\)", " ", bare)
    bare = re.sub(r"\{[^}]*\}", " ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(?:by|without)\s*\([^)]*\)", " ", bare)
    bare = re.sub(r"\$\w+", " ", bare)
    for match in re.finditer(r"[A-Za-z_:][\w:]*", bare):
        word = match.group(0)
        after = bare[match.end():].lstrip()
        if after.startswith("(") or word.lower() in PROMQL_WORDS or word == "label_values":
            continue
        metrics.append(word)
    for metric in metrics:
        if metric not in known:
            problems.append(f"no backend emits {metric}")
    in_expr = [m for m in metrics if m in known]
    for metric, body in selectors:
        for label, op, value in re.findall(r'([A-Za-z_][\w.]*|"[^"]*")\s*(=~|!~|!=|=)\s*"([^"]*)"', body):
            label = label.strip('"')
            owners = [metric] if metric else in_expr
            if metric and metric not in known:
                continue
            if not any(label in known[m] for m in owners):
                problems.append(f"{metric or 'selector'}: no label {label}")
            elif op == "=" and label in values and "$" not in value and value not in values[label]:
                problems.append(f"{label}={value!r} is not a value the backend writes ({sorted(values[label])})")
    for group in grouping:
        for label in [l.strip() for l in group.split(",") if l.strip()]:
            if in_expr and not any(label in known[m] for m in in_expr):
                problems.append(f"grouping by {label}, which none of {in_expr} has")
    return problems


def dashboard_queries(repo):
    """(where, expression) for every Prometheus query of the dashboards and datasources."""
    directory = os.path.join(repo, "grafana/dashboards")
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as handle:
            dashboard = json.load(handle)

        def walk(node, where):
            if isinstance(node, dict):
                label = node.get("title") or where
                source = node.get("datasource")
                prometheus = not isinstance(source, dict) or source.get("type") == "prometheus"
                for key in ("expr", "definition"):
                    if isinstance(node.get(key), str) and prometheus:
                        yield f"{name}: {label}", node[key]
                query = node.get("query")
                if isinstance(query, dict) and isinstance(query.get("query"), str) and prometheus:
                    yield f"{name}: {label}", query["query"]
                for value in node.values():
                    yield from walk(value, label)
            elif isinstance(node, list):
                for item in node:
                    yield from walk(item, where)

        yield from walk(dashboard, name)
    sources = os.path.join(repo, "grafana/provisioning/datasources")
    for name in sorted(os.listdir(sources)):
        for source in load_yaml(os.path.join(sources, name)).get("datasources") or []:
            for query in ((source.get("jsonData") or {}).get("tracesToMetrics") or {}).get("queries") or []:
                # `$$__tags` is Grafana's tag filter, escaped for provisioning.
                yield f"{name}: {source['name']} / {query['name']}", query["query"].replace("$$", "$")


def main(args):
    if len(args) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    repo = args[0]
    known, values = known_series(repo)
    problems = []
    count = 0
    for where, expr in dashboard_queries(repo):
        count += 1
        for problem in check_expression(expr, known, values):
            problems.append(f"{where}: {problem}\n    in: {expr}")
    return verdict("metric names", problems, f"metric names ok: {count} queries against {len(known)} series the backends emit")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
