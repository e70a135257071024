"""infra/monitoring: the alert rules pass their promtool unit tests, and every metric a
rule or a dashboard reads is one that a running gateway or worker exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

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


KUBERNETES_CONFIG = MONITORING / "prometheus-kubernetes.yml"


def test_the_kubernetes_prometheus_config_is_valid(tmp_path: Path) -> None:
    """promtool checks it all but the discovery: Debian builds Prometheus without its
    Kubernetes discovery, so the pod role is swapped for a static target here."""
    config = yaml.safe_load(KUBERNETES_CONFIG.read_text())
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
        job["static_configs"] = [{"targets": ["10.0.0.1:9100"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    checked = _promtool("check", "config", "--syntax-only", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _meta_name(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _pod_targets(deployment: dict[str, Any]) -> list[dict[str, str]]:
    """What Prometheus's pod role offers for one pod of the Deployment: one target per
    declared container port, with the pod's labels and annotations as meta labels."""
    template = deployment["spec"]["template"]
    meta = {"__meta_kubernetes_namespace": deployment["metadata"]["namespace"]}
    meta["__meta_kubernetes_pod_name"] = deployment["metadata"]["name"] + "-7d9f8-abcde"
    for name, value in template["metadata"].get("labels", {}).items():
        meta[f"__meta_kubernetes_pod_label_{_meta_name(name)}"] = value
    for name, value in template["metadata"].get("annotations", {}).items():
        meta[f"__meta_kubernetes_pod_annotation_{_meta_name(name)}"] = value
    return [
        {
            **meta,
            "__address__": f"10.0.0.1:{port['containerPort']}",
            "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
            "__metrics_path__": "/metrics",
        }
        for container in template["spec"]["containers"]
        for port in container.get("ports", [])
    ]


def _relabel(target: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus's keep/replace relabelling (regexes anchored at both ends, `$1`)."""
    for rule in rules:
        value = rule.get("separator", ";").join(
            target.get(name, "") for name in rule.get("source_labels", [])
        )
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        action = rule.get("action", "replace")
        if action == "keep":
            if match is None:
                return None
        elif action == "replace":
            if match is not None:
                replacement = re.sub(r"\$(\d+)", r"\\g<\1>", rule.get("replacement", "$1"))
                target = {**target, rule["target_label"]: match.expand(replacement)}
        else:
            raise AssertionError(f"relabel action {action} is not simulated here")
    return target


def test_the_kubernetes_config_scrapes_every_gateway_and_worker_pod() -> None:
    """The pods of infra/k8s, through the config's relabelling: each gateway and worker
    is one target on its metrics port, under the job names the rules use."""
    from tests.infra.test_k8s import by_kind

    config = yaml.safe_load(KUBERNETES_CONFIG.read_text())
    (job,) = config["scrape_configs"]
    settings = by_kind("overlays/prod", "ConfigMap")["haunted-config"]["data"]
    ports = {"gateway": 8000, "worker": int(settings["HAUNTED_WORKER_PORT"])}
    scraped: dict[str, dict[str, str]] = {}
    for name, deployment in by_kind("overlays/prod", "Deployment").items():
        for offered in _pod_targets(deployment):
            target = _relabel(offered, job["relabel_configs"])
            if target is not None:
                assert name not in scraped, f"{name} is scraped twice"
                scraped[name] = target
    components = {
        name: deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        for name, deployment in by_kind("overlays/prod", "Deployment").items()
    }
    expected = {name for name, component in components.items() if component in ports}
    assert set(scraped) == expected and len(expected) >= 3, scraped  # not the web app
    for name, target in scraped.items():
        component = components[name]
        assert target["__address__"] == f"10.0.0.1:{ports[component]}", name
        assert target["__metrics_path__"] == "/metrics"
        assert target["job"] == f"haunted-{component}"  # as up{job=~"haunted-.*"} reads
        assert (target["namespace"], target["deployment"]) == ("haunted", name)


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
