"""The metric names the monitoring files use, and the names a /metrics scrape exposes.

`used_metric_names()` reads every `openvle_*` name out of deploy/prometheus/alerts.yml
and the Grafana dashboard under deploy/grafana; `API_METRICS` are the ones only the API
process produces (HTTP requests, operation counts read from the database at scrape
time): every other one must be in a worker's scrape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).parents[2]
API_METRICS = {
    "openvle_http_requests_total",
    "openvle_http_request_seconds_bucket",
    "openvle_operations_current",
}
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
NAME = re.compile(r"\b(openvle_[a-z0-9_]+)")


def dashboards() -> list[Path]:
    return sorted((ROOT / "deploy").rglob("*.json"))


def expressions() -> list[str]:
    """Every PromQL expression of the alert rules and of the dashboards' panels."""
    found = []
    for group in yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]:
        found.extend(rule["expr"] for rule in group["rules"])
    for path in dashboards():
        for panel in json.loads(path.read_text())["panels"]:
            found.extend(target["expr"] for target in panel.get("targets", []))
    return found


def used_metric_names() -> set[str]:
    """The series names (`_total`, `_bucket`, ... as written) the expressions read."""
    return {name for expr in expressions() for name in NAME.findall(expr)}


def exposed_names(text: str) -> set[str]:
    """Series names a scrape offers, by family type (a labelled family with no samples
    yet is still described by its TYPE line, so it counts)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + s for s in SUFFIXES.get(family.type, [""]))
        names.update(sample.name for sample in family.samples)
    return names


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called `name` in a scrape."""
    return [
        (dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]
