"""``ame serve …``: run the decision API locally and manage its API keys."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import orjson
import typer
import yaml
from rich.console import Console

from serve.auth import SCOPES, generate_key

serve_app = typer.Typer(help="The Ray Serve decision API: run it, manage API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (stored hashed).", no_args_is_help=True)
serve_app.add_typer(keys_app, name="keys")
console = Console()
err = Console(stderr=True)


@keys_app.command("new")
def keys_new_command(
    name: str,
    scope: Annotated[list[str], typer.Option("--scope", help="ingest, decide or admin (repeat for several).")],
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
    """Deploy serve/config.yaml on a Ray cluster and keep it up until Ctrl-C (``serve run`` does the same)."""
    import ray  # lazy: Ray is heavy
    from ray import serve  # lazy: Ray is heavy
    from ray.serve.schema import ServeDeploySchema  # lazy: Ray is heavy

    from serve.app import build_app  # lazy: loads FastAPI

    spec = ServeDeploySchema.model_validate(yaml.safe_load(config.read_text()))
    ray.init(address=address or None)
    serve.start(http_options=spec.http_options.model_dump(exclude_unset=True))
    app = spec.applications[0]
    dep = app.deployments[0]
    options = {"user_config": dep.user_config, "autoscaling_config": dep.autoscaling_config}
    serve.run(build_app(app.args, **options), name=app.name, route_prefix=app.route_prefix)
    console.print(f"decision API up on port {spec.http_options.port} (OpenAPI at /docs); Ctrl-C to stop")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        serve.shutdown()
