"""serve/config.yaml under Ray's ServeDeploySchema, and the app's own models of its args and user_config. A broken
field must fail. (ray_cluster.yaml, which embeds this config, is checked in tests/unit/deploy.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from serve.engine import ServeArgs, Tunables

ROOT = Path(__file__).resolve().parents[3]


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
