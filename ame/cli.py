"""The root of the ``ame`` command line. Each area defines its sub-app next to its code; this file only
composes them, so it is the one place that may import from every top-level package."""

from __future__ import annotations

import logging

import typer

from agents.cli import agents_app
from agents.schedule_cli import schedule_app
from ame.demo import demo_command
from ame.infra_cli import infra_app
from ame.parity import parity_command
from ame.parity_bid import parity_bid_command
from ame.sim_run import lift_command, run_command
from data.activation.cli import activate_app
from data.cli import events_app, log_app, profile_app
from data.demo import demo_command as log_demo_command
from data.privacy.cli import privacy_app
from data.warehouse.cli import warehouse_app
from environment.cli import sim_app
from policies.cli import models_app, train_app
from policies.cli_policies import evaluate_app, ope_command, policies_app
from policies.creative.cli import creatives_app
from serve.cli import serve_app

app = typer.Typer(
    name="ame",
    help="Autonomous Marketing Engine: an event-sourced agent system on Ray.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


app.command("demo")(demo_command)
app.add_typer(events_app, name="events")
log_app.command("demo")(log_demo_command)
app.add_typer(log_app, name="log")
app.add_typer(profile_app, name="profile")
app.add_typer(train_app, name="train")
app.add_typer(models_app, name="models")
app.add_typer(warehouse_app, name="warehouse")
app.add_typer(agents_app, name="agents")
app.add_typer(schedule_app, name="schedule")
sim_app.command("run")(run_command)
sim_app.command("parity")(parity_command)
sim_app.command("parity-bid")(parity_bid_command)
app.add_typer(sim_app, name="sim")
app.add_typer(policies_app, name="policies")
app.add_typer(evaluate_app, name="evaluate")
app.command("ope")(ope_command)
app.command("lift")(lift_command)
app.add_typer(creatives_app, name="creatives")
app.add_typer(serve_app, name="serve")
app.add_typer(activate_app, name="activate")
app.add_typer(privacy_app, name="privacy")
app.add_typer(infra_app, name="infra")
