"""``ame serve …``: run the decision API locally and manage its API keys."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
import yaml
from rich.console import Console
from rich.markup import escape

from serve.auth import SCOPES, generate_key
from serve.ingress import IngressError, choose_ingress

if TYPE_CHECKING:
    from ray.serve.schema import ServeDeploySchema

serve_app = typer.Typer(help="The Ray Serve decision API: run it, manage API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (stored hashed).", no_args_is_help=True)
serve_app.add_typer(keys_app, name="keys")
console = Console()
err = Console(stderr=True)


@keys_app.command("new")
def keys_new_command(
    name: str,
    scope: Annotated[list[str], typer.Option("--scope", help="ingest, decide, approve or admin (repeat for several).")],
    file: Annotated[Path, typer.Option(help="Key file to add the hashed key to (created if absent).")] = Path("api-keys.json"),
) -> None:
    """Make a key: prints the token once and stores only its SHA-256 in FILE."""
    bad = [s for s in scope if s not in SCOPES]
    if bad:
        err.print(f"[red]error:[/] unknown scope {', '.join(bad)}; use {', '.join(SCOPES)}")
        raise typer.Exit(2)
    data = orjson.loads(file.read_bytes()) if file.is_file() else {"keys": []}
    if any(k["name"] == name for k in data["keys"]):
        err.print(f"[red]error:[/] a key named {name!r} is already in {file}; pick another name or remove it first")
        raise typer.Exit(2)
    token, key = generate_key(name, scope)
    data["keys"].append(key.model_dump(mode="json"))
    file.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    console.print(f"key [bold]{name}[/] ({', '.join(sorted(scope))}) added to {file}; the token, shown once:")
    console.print(token, soft_wrap=True)


@serve_app.command("run")
def run_command(
    config: Annotated[Path, typer.Option(help="Serve config file.")] = Path("serve/config.yaml"),
    address: Annotated[str, typer.Option(help="Ray address ('auto' for a running cluster, '' for a local one).")] = "",
) -> None:
    """Deploy serve/config.yaml on a Ray cluster and keep it up until Ctrl-C (``serve run`` does the same).

    A local cluster gets Ray Serve's HAProxy ingress when an haproxy binary is there (as ray_cluster.yaml sets it);
    without one, the start-up says what that costs and what to install."""
    _choose_ingress(local=not address)  # before Ray is imported: Serve reads its ingress from the environment
    import ray  # lazy: Ray is heavy
    from ray import serve  # lazy: Ray is heavy
    from ray.serve.schema import ServeDeploySchema  # lazy: Ray is heavy

    from serve.app import build_app  # lazy: loads FastAPI

    spec = ServeDeploySchema.model_validate(yaml.safe_load(config.read_text()))
    ray.init(address=address or None)
    serve.start(http_options=spec.http_options.model_dump(exclude_unset=True))
    app = spec.applications[0]
    serve.run(build_app(app.args, **deployment_options(spec)), name=app.name, route_prefix=app.route_prefix)
    console.print(f"decision API up on port {spec.http_options.port} (OpenAPI at /docs); Ctrl-C to stop")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        serve.shutdown()


def _choose_ingress(local: bool) -> None:
    """Set the ingress variables for the Ray processes this command starts, and say which ingress it is."""
    try:
        choice = choose_ingress(os.environ, local=local)
    except IngressError as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None
    os.environ.update(choice.env)
    if choice.warn:
        err.print(f"[yellow]warning:[/] {escape(choice.message)}", soft_wrap=True)
    else:
        console.print(choice.message, markup=False, soft_wrap=True)


def deployment_options(spec: ServeDeploySchema) -> dict[str, Any]:
    """The first application's deployment options as the config file sets them (replicas, autoscaling, health checks,
    ``user_config``, actor options), with its logging configuration (the access log off), for :func:`build_app`."""
    app = spec.applications[0]
    options = app.deployments[0].model_dump(mode="json", exclude_unset=True, exclude={"name"})
    logging_config = app.logging_config or spec.logging_config
    if logging_config is not None and "logging_config" not in options:
        options["logging_config"] = logging_config.model_dump(mode="json", exclude_unset=True)
    return options
