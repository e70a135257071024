"""infra/k8s, checked offline: each overlay renders with `kubectl kustomize`, every
object validates against a current Kubernetes release's schemas (kubernetes-validate),
Checkov fails nothing but inline waivers that give a reason, and the properties the
deployment relies on hold (probes, Pod Security restricted, secrets by name only,
NetworkPolicies deny by default, built-in kinds only in prod)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from haunted.settings import variables

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
TOOLS = ROOT / ".venv-tools" / "bin"
OVERLAYS = ("dev", "prod")
# A current release; kubernetes-validate ships its schemas (no network).
KUBERNETES_VERSION = "1.32.0"
BUILT_IN_GROUPS = {
    "v1",
    "apps/v1",
    "batch/v1",
    "policy/v1",
    "autoscaling/v2",
    "networking.k8s.io/v1",
}
WORKLOADS = {"Deployment", "StatefulSet", "Job", "CronJob"}


# Variables the k8s config names before the Settings fields land (helpers working in
# parallel): HAUNTED_WORKER_PORT is the workers' HTTP port.
def _tool(name: str) -> str:
    path = TOOLS / name
    assert path.exists(), f"{path} is missing: run `make .venv-tools/.installed`"
    return str(path)


@functools.cache
def rendered(target: str) -> str:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render the overlays"
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S / target)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def objects(target: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered(target)) if doc]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    spec_: dict[str, Any] = spec["template"]["spec"]
    return spec_


def by_kind(target: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects(target) if o["kind"] == kind}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_renders_into_its_namespace(overlay: str) -> None:
    found = objects(f"overlays/{overlay}")
    namespaces = [o for o in found if o["kind"] == "Namespace"]
    assert len(namespaces) == 1
    name = namespaces[0]["metadata"]["name"]
    assert namespaces[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in found:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == name, obj["metadata"]["name"]
    kinds = {o["kind"] for o in found}
    assert {"Deployment", "Service", "Job", "Ingress", "NetworkPolicy"} <= kinds
    assert {"PodDisruptionBudget", "HorizontalPodAutoscaler", "StatefulSet"} <= kinds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schemas(
    overlay: str, tmp_path: Path
) -> None:
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(rendered(f"overlays/{overlay}"))
    done = subprocess.run(
        [
            _tool("kubernetes-validate"),
            "--kubernetes-version",
            KUBERNETES_VERSION,
            "--strict",
            str(manifest),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    passed = re.findall(r"passed for resource", done.stdout + done.stderr)
    assert len(passed) == len(objects(f"overlays/{overlay}"))


def test_a_broken_object_fails_the_schema_check(tmp_path: Path) -> None:
    """The check above can fail: a misspelt field is refused."""
    broken = tmp_path / "broken.yaml"
    deployment = by_kind("overlays/prod", "Deployment")["haunted-gateway"]
    deployment["spec"]["replica"] = 2
    broken.write_text(yaml.safe_dump(deployment))
    done = subprocess.run(
        [_tool("kubernetes-validate"), "-k", KUBERNETES_VERSION, "--strict", str(broken)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0


def _checkov(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _tool("checkov"),
            "--directory",
            str(directory),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--compact",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_checkov_fails_no_check(tmp_path: Path) -> None:
    for overlay in OVERLAYS:
        (tmp_path / f"{overlay}.yaml").write_text(rendered(f"overlays/{overlay}"))
    done = _checkov(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Failed checks: 0" in done.stdout
    assert re.search(r"Passed checks: [1-9]", done.stdout)


def test_checkov_would_fail_a_privileged_pod(tmp_path: Path) -> None:
    deployment = by_kind("overlays/prod", "Deployment")["haunted-gateway"]
    container = pod_spec(deployment)["containers"][0]
    container["securityContext"]["privileged"] = True
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(deployment))
    done = _checkov(tmp_path)
    assert done.returncode != 0
    assert "CKV_K8S_16" in done.stdout


def test_every_waiver_names_a_check_and_gives_its_reason() -> None:
    for overlay in OVERLAYS:
        for obj in objects(f"overlays/{overlay}"):
            for key, value in (obj["metadata"].get("annotations") or {}).items():
                if key.startswith("checkov.io/skip"):
                    check, _, reason = value.partition("=")
                    assert re.fullmatch(r"CKV2?_K8S_\d+", check), value
                    assert len(reason.split()) >= 5, f"{obj['metadata']['name']}: {value}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_restricted(overlay: str) -> None:
    workloads = [o for o in objects(f"overlays/{overlay}") if o["kind"] in WORKLOADS]
    assert len(workloads) >= 8
    for obj in workloads:
        spec = pod_spec(obj)
        name = obj["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert context["seccompProfile"]["type"] == "RuntimeDefault", name
            assert context.get("runAsUser", spec["securityContext"].get("runAsUser")) >= 10000
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert {"cpu", "memory"} <= set(resources["limits"]), name


def test_the_gateway_is_probed_spread_budgeted_and_scaled() -> None:
    gateway = by_kind("overlays/prod", "Deployment")["haunted-gateway"]
    spec = pod_spec(gateway)
    container = spec["containers"][0]
    assert container["args"] == ["serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {c["topologyKey"] for c in spec["topologySpreadConstraints"]} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    pdb = by_kind("overlays/prod", "PodDisruptionBudget")["haunted-gateway"]
    assert pdb["spec"]["selector"]["matchLabels"] == gateway["spec"]["selector"]["matchLabels"]
    hpa = by_kind("overlays/prod", "HorizontalPodAutoscaler")["haunted-gateway"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "haunted-gateway"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2


def test_workers_per_service_group_probe_their_port() -> None:
    config = by_kind("overlays/prod", "ConfigMap")["haunted-config"]["data"]
    port = int(config["HAUNTED_WORKER_PORT"])
    workers = {
        name: o
        for name, o in by_kind("overlays/prod", "Deployment").items()
        if o["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    }
    served: list[str] = []
    for obj in workers.values():
        container = pod_spec(obj)["containers"][0]
        assert container["args"][0] == "worker"
        served += container["args"][1:]
        assert container["ports"][0]["containerPort"] == port
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    from haunted.services import NAMES

    assert sorted(served) == sorted(NAMES)  # each service in exactly one group


def test_the_jobs_and_the_backups() -> None:
    jobs = by_kind("overlays/prod", "Job")
    assert pod_spec(jobs["haunted-migrate"])["containers"][0]["args"] == ["migrate"]
    assert pod_spec(jobs["haunted-topics"])["containers"][0]["args"] == ["topics", "create"]
    crons = by_kind("overlays/prod", "CronJob")
    daily = pod_spec(crons["haunted-backup"])["containers"][0]["args"]
    assert daily[0] == "backup" and "--keep" in daily
    assert "--physical" in pod_spec(crons["haunted-base-backup"])["containers"][0]["args"]
    assert not by_kind("overlays/dev", "CronJob")


def test_the_ingress_terminates_tls_and_keeps_sockets() -> None:
    ingress = by_kind("overlays/prod", "Ingress")["haunted"]
    annotations = ingress["metadata"]["annotations"]
    assert "cert-manager.io/cluster-issuer" in annotations
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert ingress["spec"]["tls"][0]["secretName"]
    backends = {
        p["path"]: p["backend"]["service"]["name"]
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    assert backends["/socket.io"] == backends["/graphql"] == "haunted-gateway"
    assert backends["/"] == "haunted-web"


def test_network_policies_deny_by_default_and_open_only_what_is_needed() -> None:
    policies = by_kind("overlays/prod", "NetworkPolicy")
    deny = policies["haunted-default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    for name, app in (("haunted-gateway-from-ingress", "haunted-gateway"),
                      ("haunted-web-from-ingress", "haunted-web")):  # fmt: skip
        spec = policies[name]["spec"]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == app
        (source,) = spec["ingress"][0]["from"]
        assert source["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "ingress-nginx"
        }
    stores = policies["haunted-datastores"]["spec"]
    allowed = [s["podSelector"]["matchLabels"] for s in stores["ingress"][0]["from"]]
    assert {"haunted.dev/data-access": "true"} in allowed
    # Who carries the data-access label: gateway, workers, Jobs, backups; never web.
    for obj in objects("overlays/prod"):
        if obj["kind"] in WORKLOADS:
            template = obj["spec"]
            if obj["kind"] == "CronJob":
                template = template["jobTemplate"]["spec"]
            labels = template["template"]["metadata"]["labels"]
            component = labels["app.kubernetes.io/component"]
            has_access = labels.get("haunted.dev/data-access") == "true"
            assert has_access == (component not in ("web", "datastore")), obj["metadata"]["name"]


def test_secrets_are_referenced_by_name_only() -> None:
    for overlay in OVERLAYS:
        found = objects(f"overlays/{overlay}")
        assert not [o for o in found if o["kind"] == "Secret"]
        text = rendered(f"overlays/{overlay}")
        assert "BEGIN" not in text and "PRIVATE KEY" not in text
    gateway = pod_spec(by_kind("overlays/prod", "Deployment")["haunted-gateway"])
    refs = {e["secretRef"]["name"] for e in gateway["containers"][0]["envFrom"] if "secretRef" in e}
    assert {"haunted-pii", "haunted-stripe", "haunted-openai", "haunted-smtp"} <= refs
    assert "haunted-metrics" in refs
    assert {v["secret"]["secretName"] for v in gateway["volumes"] if "secret" in v} == {
        "haunted-jwt"
    }


def test_the_config_names_only_settings() -> None:
    config = by_kind("overlays/prod", "ConfigMap")["haunted-config"]["data"]
    unknown = set(config) - variables()
    assert not unknown, sorted(unknown)
    mount = "/run/secrets/haunted-jwt/"
    assert config["HAUNTED_JWT_PRIVATE_KEY_FILE"].startswith(mount)


def test_prod_uses_built_in_kinds_and_the_components_add_the_crd_extras(tmp_path: Path) -> None:
    for obj in objects("overlays/prod"):
        assert obj["apiVersion"] in BUILT_IN_GROUPS, (obj["kind"], obj["apiVersion"])
    with_extras = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "haunted",
        "resources": [os.path.relpath(K8S / "overlays" / "prod", tmp_path)],
        "components": [
            os.path.relpath(K8S / "components" / "monitoring", tmp_path),
            os.path.relpath(K8S / "components" / "certificate", tmp_path),
        ],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(with_extras))
    done = subprocess.run(
        ["kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    kinds = {o["kind"]: o for o in found}
    assert kinds["ServiceMonitor"]["metadata"]["namespace"] == "haunted"
    (endpoint,) = kinds["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["bearerTokenSecret"]["name"] == "haunted-metrics"
    ingress = kinds["Ingress"]
    assert kinds["Certificate"]["spec"]["secretName"] == ingress["spec"]["tls"][0]["secretName"]
    assert "cert-manager.io/cluster-issuer" not in ingress["metadata"]["annotations"]


def test_postgres_archives_wal_and_allows_the_base_backup() -> None:
    postgres = by_kind("overlays/prod", "StatefulSet")["haunted-postgres"]
    container = pod_spec(postgres)["containers"][0]
    args = dict(arg.split("=", 1) for arg in container["args"] if "=" in arg)
    assert args["archive_mode"] == "on" and "%p" in args["archive_command"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["archive"] != mounts["data"]  # its own volume
    assert mounts["initdb"] == "/docker-entrypoint-initdb.d"
    script = by_kind("overlays/prod", "ConfigMap")["haunted-postgres-initdb"]["data"]
    line = "host replication all all scram-sha-256"
    assert line in script["replication.sh"]
    assert line in (ROOT / "infra" / "docker" / "postgres-replication.sh").read_text()
    redis = pod_spec(by_kind("overlays/prod", "StatefulSet")["haunted-redis"])["containers"][0]
    assert redis["args"][redis["args"].index("--appendonly") + 1] == "yes"
    assert "--save" in redis["args"]
