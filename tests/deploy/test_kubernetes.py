"""The Kubernetes manifests and the S3 lifecycle rule, checked offline.

Against the API schemas shipped by kubernetes-validate (strict: an unknown or misspelt field
fails), and against the service itself: the ConfigMap is a configuration the service accepts,
and the numbers that must agree (grace period and SHUTDOWN_TIMEOUT, workers and CPUs, memory
and RENDER_MEMORY_LIMIT, the lease prefix and the lifecycle rule) do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.session
import kubernetes_validate
import pytest
import yaml
from botocore.validate import ParamValidator

from thumbservice.adapters.rendering.framecache import entry_bytes
from thumbservice.entrypoints.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
OLDEST_SUPPORTED = "1.30"  # the preStop/probe/HPA v2 fields used here are all GA by then
SERVICE_PEAK_MIB = 190  # the service process at its peak in the benchmark


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())


def manifests() -> dict[str, dict[str, Any]]:
    """kind -> the manifest, for every resource the kustomization lists."""
    found = {}
    for name in kustomization()["resources"]:
        document = yaml.safe_load((KUBERNETES / name).read_text())
        found[document["kind"]] = document
    return found


def container() -> dict[str, Any]:
    return manifests()["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for unit, factor in units.items():
        if quantity.endswith(unit):
            return float(quantity[: -len(unit)]) * factor
    return float(quantity) / 1024**2


def test_the_kustomization_lists_every_manifest() -> None:
    listed = set(kustomization()["resources"])
    present = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("version", [OLDEST_SUPPORTED, kubernetes_validate.latest_version()])
def test_every_manifest_is_valid_for_kubernetes(version: str) -> None:
    kinds = manifests()
    assert set(kinds) == {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
    for document in kinds.values():
        kubernetes_validate.validate(document, version, strict=True)


def test_the_configmap_and_secret_are_a_configuration_the_service_accepts() -> None:
    kinds = manifests()
    env = {**kinds["ConfigMap"]["data"], **kinds["Secret"]["stringData"]}
    settings = Settings.from_env(env)
    assert settings.store_kind == "s3" and settings.lease_kind == "s3"
    assert settings.tmp_dir == Path("/tmp")
    mounts = {m["mountPath"] for m in container()["volumeMounts"]}
    assert "/tmp" in mounts, "TMP_DIR must be a writable volume: the root filesystem is not"


def test_the_grace_period_covers_the_shutdown() -> None:
    kinds = manifests()
    settings = Settings.from_env(kinds["ConfigMap"]["data"])
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    pre_stop = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # SHUTDOWN_TIMEOUT bounds the whole stop: requests, then renders and uploads, then clients.
    needed = float(pre_stop[1]) + settings.shutdown_timeout + 5
    assert pod["terminationGracePeriodSeconds"] >= needed


def test_probes_and_ports_match_the_service() -> None:
    kinds = manifests()
    settings = Settings.from_env(kinds["ConfigMap"]["data"])
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert ports == {"http": settings.port, "metrics": settings.metrics_port}
    annotations = kinds["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.metrics_port)
    assert container()["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container()["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container()["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == "http"


def test_resources_fit_the_workers() -> None:
    settings = Settings.from_env(manifests()["ConfigMap"]["data"])
    resources = container()["resources"]
    assert settings.render_workers == int(resources["requests"]["cpu"])
    assert settings.render_memory_limit is not None
    worker_cap = settings.render_memory_limit / 1024**2
    limit = mib(resources["limits"]["memory"])
    assert limit >= SERVICE_PEAK_MIB + settings.render_workers * worker_cap
    assert mib(resources["requests"]["memory"]) <= limit


def test_the_frame_cache_has_a_volume_that_holds_it() -> None:
    settings = Settings.from_env(manifests()["ConfigMap"]["data"])
    assert settings.frame_cache_bytes > 0 and settings.frame_cache_dir is not None
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    volume_name = mounts[str(settings.frame_cache_dir)]
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == volume_name)
    # The cache, and one picture per worker being written before the oldest is removed: the
    # largest image the service accepts, in color (4 bytes a pixel).
    largest_entry = entry_bytes(settings.max_image_pixels, 1, 4)
    needed = settings.frame_cache_bytes + settings.render_workers * largest_entry
    assert mib(volume["emptyDir"]["sizeLimit"]) * 1024**2 >= needed
    resources = container()["resources"]
    storage = mib(resources["limits"]["ephemeral-storage"])
    scratch = next(v for v in pod["volumes"] if v["name"] == mounts["/tmp"])
    assert storage >= mib(scratch["emptyDir"]["sizeLimit"]) + mib(volume["emptyDir"]["sizeLimit"])
    # Its pages are charged to the pod: memory for them beside the processes'.
    assert settings.render_memory_limit is not None
    processes = SERVICE_PEAK_MIB + settings.render_workers * settings.render_memory_limit / 1024**2
    assert mib(resources["limits"]["memory"]) >= processes + settings.frame_cache_bytes / 1024**2


def test_disruptions_and_autoscaling_keep_replicas_serving() -> None:
    kinds = manifests()
    deployment, hpa, pdb = (
        kinds["Deployment"],
        kinds["HorizontalPodAutoscaler"],
        kinds["PodDisruptionBudget"],
    )
    pods = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        pdb["spec"]["selector"]["matchLabels"],
        kinds["Service"]["spec"]["selector"],
    ):
        assert selector.items() <= pods.items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_lifecycle_rule_expires_leftover_leases_and_only_them() -> None:
    settings = Settings.from_env(manifests()["ConfigMap"]["data"])
    rule_set = json.loads((DEPLOY / "s3" / "lease-lifecycle.json").read_text())
    model = botocore.session.get_session().get_service_model("s3")
    shape = model.operation_model("PutBucketLifecycleConfiguration").input_shape
    report = ParamValidator().validate(
        {"Bucket": settings.aws_bucket, "LifecycleConfiguration": rule_set}, shape
    )
    assert not report.has_errors(), report.generate_report()
    (rule,) = rule_set["Rules"]
    assert rule["Filter"]["Prefix"] == settings.lease_prefix
    assert rule["Status"] == "Enabled"
