"""infra/monitoring: the alert rules pass their promtool unit tests, and every metric a
rule or a dashboard reads is one that a running gateway or worker exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import yaml

from haunted.settings import Settings
from tests.conftest import serve, serve_worker

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "infra" / "monitoring"
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
METRIC = re.compile(r"\b(haunted_[a-z0-9_]+)")
SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install -y prometheus (.ci/run does)"
    return subprocess.run(
        [promtool, *args], cwd=MONITORING, capture_output=True, text=True, timeout=60
    )


def test_the_alert_rules_pass_their_unit_tests() -> None:
    checked = _promtool("check", "rules", "rules/haunted.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", "rules/tests.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_and_a_runbook_section() -> None:
    rules = yaml.safe_load((MONITORING / "rules" / "haunted.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((MONITORING / "rules" / "tests.yml").read_text())
    tested = {
        case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])
    }
    assert alerts == tested
    operations = (ROOT / "docs" / "operations.md").read_text().lower()
    for alert in alerts:
        assert f"### {alert.lower()}" in operations, alert


def test_the_prometheus_config_is_valid() -> None:
    checked = _promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def used_metrics() -> set[str]:
    texts = [(MONITORING / "rules" / "haunted.yml").read_text()]
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        texts.extend(target["expr"] for panel in board["panels"] for target in panel["targets"])
    return {name for text in texts for name in METRIC.findall(text)}


def exported(metrics: str) -> set[str]:
    """Every series name the text can hold: samples, and the families declared (a
    labelled metric nothing has touched yet has a TYPE line and no sample)."""
    names = set()
    for line in metrics.splitlines():
        if line.startswith("# TYPE "):
            family = line.split()[2]
            names.update(family + suffix for suffix in SUFFIXES)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_the_dashboards_are_provisionable_json() -> None:
    assert {path.stem for path in DASHBOARDS} == {"overview", "events", "realtime", "llm", "auth"}
    uids = [json.loads(path.read_text())["uid"] for path in DASHBOARDS]
    assert len(set(uids)) == len(uids)


async def test_every_metric_a_rule_or_dashboard_reads_is_exported(settings: Settings) -> None:
    async with serve(settings, workers=()) as gateway, serve_worker(settings) as worker:
        async with httpx.AsyncClient(timeout=5) as client:
            gateway_metrics = (await client.get(f"{gateway.url}/metrics")).text
            worker_metrics = (await client.get(f"{worker.url}/metrics")).text
    names = exported(gateway_metrics) | exported(worker_metrics)
    missing = sorted(used_metrics() - names)
    assert not missing, f"read by a rule or dashboard, exported by nobody: {missing}"
    assert "haunted_consumer_lag_records" in worker_metrics
    assert "_created" not in gateway_metrics + worker_metrics
