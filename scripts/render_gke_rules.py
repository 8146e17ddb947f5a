"""Writes deploy/alerts/gke-rules.yaml, the GKE Managed Prometheus form of deploy/alerts/rules.yaml.

GKE's managed rule evaluator reads ``monitoring.googleapis.com/v1`` ``Rules`` resources, whose ``spec.groups`` is
the plain Prometheus rule-group list, so the manifest carries rules.yaml's groups unchanged. The resource is
namespaced: its rules query only the metrics scraped in its namespace (``ame``, where the engine runs).
Run ``.venv/bin/python scripts/render_gke_rules.py`` after editing rules.yaml; tests/unit/serve/test_alert_rules.py fails
while the two differ.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ALERTS = Path(__file__).resolve().parent.parent / "deploy" / "alerts"
HEADER = """\
# GKE Managed Prometheus alerting rules of the engine: a monitoring.googleapis.com/v1 Rules resource in the
# engine's namespace. GENERATED from rules.yaml by scripts/render_gke_rules.py: edit rules.yaml, then rerun it.
# Apply with: kubectl apply -f deploy/alerts/gke-rules.yaml
"""


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (the longer expressions) as ``|`` blocks, as rules.yaml does."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def manifest(rules: dict[str, Any], namespace: str = "ame") -> dict[str, Any]:
    """The ``Rules`` resource carrying the groups of a plain rule file."""
    return {
        "apiVersion": "monitoring.googleapis.com/v1",
        "kind": "Rules",
        "metadata": {"name": "ame-alerts", "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "ame"}},
        "spec": {"groups": rules["groups"]},
    }


def render(rules_path: Path = ALERTS / "rules.yaml") -> str:
    rules = yaml.safe_load(rules_path.read_text(encoding="utf-8"))
    return HEADER + yaml.dump(manifest(rules), Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)


def main() -> int:
    target = ALERTS / "gke-rules.yaml"
    target.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
