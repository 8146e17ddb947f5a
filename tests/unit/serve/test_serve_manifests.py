"""serve/config.yaml under ServeDeploySchema; ray_cluster.yaml against the KubeRay CRDs (jsonschema), strict like
``kubectl apply --validate=strict``: unknown fields fail too. A broken field must fail."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from serve.engine import ServeArgs, Tunables

ROOT = Path(__file__).resolve().parents[3]
KUBERAY = ROOT / "tests" / "fixtures" / "kuberay"  # the CRDs, with their SOURCE.md

jsonschema = pytest.importorskip("jsonschema")


def _strict(schema: Any) -> Any:
    """The CRD schema with ``additionalProperties: false`` wherever properties are listed and nothing else is
    allowed (Kubernetes prunes unknown fields silently; strict validation reports them)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def crd_schema(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load((KUBERAY / f"{kind}.crd.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return _strict(version["schema"]["openAPIV3Schema"])


def errors(kind: str, doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(crd_schema(kind))
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def manifest() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all((ROOT / "ray_cluster.yaml").read_text())}


def test_serve_config_is_a_valid_serve_deploy_schema() -> None:
    from ray.serve.schema import ServeDeploySchema  # lazy: Ray is heavy

    config = ServeDeploySchema.model_validate(yaml.safe_load((ROOT / "serve" / "config.yaml").read_text()))
    app = config.applications[0]
    assert app.import_path == "serve.app:build_app"
    deployment = app.deployments[0]
    assert deployment.autoscaling_config["min_replicas"] >= 1 and deployment.autoscaling_config["max_replicas"] > 1

    ServeArgs.model_validate(app.args)  # build_app's args and the user_config must parse as the app parses them
    Tunables.model_validate(deployment.user_config)


def test_serve_config_rejects_a_broken_field() -> None:
    from ray.serve.schema import ServeDeploySchema  # lazy: Ray is heavy

    raw = yaml.safe_load((ROOT / "serve" / "config.yaml").read_text())
    raw["applications"][0]["deployments"][0]["max_ongoing_requests"] = "many"
    with pytest.raises(ValidationError):
        ServeDeploySchema.model_validate(raw)


def test_ray_cluster_manifest_matches_the_kuberay_crds() -> None:
    docs = manifest()
    service = docs["RayService"]
    assert service["apiVersion"] == "ray.io/v1"
    assert errors("rayservices", service) == []
    cluster = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "ame"},
               "spec": service["spec"]["rayClusterConfig"]}
    assert errors("rayclusters", cluster) == []
    spec = service["spec"]["rayClusterConfig"]
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert spec["enableInTreeAutoscaling"] is True
    for group in spec["workerGroupSpecs"]:
        assert 1 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        container = group["template"]["spec"]["containers"][0]
        assert container["resources"]["requests"]["cpu"] and group["template"]["spec"]["serviceAccountName"] == "ame-ray"
    sa = docs["ServiceAccount"]
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")


def test_embedded_serve_config_equals_serve_config_yaml() -> None:
    from ray.serve.schema import ServeDeploySchema  # lazy: Ray is heavy

    embedded = yaml.safe_load(manifest()["RayService"]["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(embedded)
    assert embedded == yaml.safe_load((ROOT / "serve" / "config.yaml").read_text())


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (("rayClusterConfig", "workerGroupSpecs", 0, "maxReplicas"), "ten", "maxReplicas"),
        (("rayClusterConfig", "workerGroupSpecs", 0, "maxReplica"), 10, "maxReplica"),  # a typo: unknown field
        (("rayClusterConfig", "enableInTreeAutoscaling"), "yes", "enableInTreeAutoscaling"),
    ],
)
def test_a_broken_field_fails(path: tuple[Any, ...], value: Any, expected: str) -> None:
    service = copy.deepcopy(manifest()["RayService"])
    node = service["spec"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    found = errors("rayservices", service)
    assert found and any(expected in e for e in found), found
