"""``ame train …`` and ``ame models …``: the command line of the learned models.

Each model family adds its commands here; the root app (``ame/cli.py``) mounts ``train_app`` and
``models_app``. Scoring and lifetime value come from :mod:`policies.scoring.cli`.
"""

from __future__ import annotations

import typer

from policies.cli_policies import train_bidder, train_bidding, train_journey
from policies.scoring.cli import models_drift, models_list, models_score, models_show, train_clv, train_scoring
from policies.scoring.cli_audit import models_audit

train_app = typer.Typer(help="Train models: lead/churn scores, lifetime value (and the RL policies).", no_args_is_help=True)
models_app = typer.Typer(help="The model registry: list, show, score with, watch drift of and audit trained models.", no_args_is_help=True)

train_app.command("scoring")(train_scoring)
train_app.command("clv")(train_clv)
train_app.command("journey")(train_journey)
train_app.command("bidding")(train_bidding)
train_app.command("bidder")(train_bidder)

models_app.command("list")(models_list)
models_app.command("show")(models_show)
models_app.command("score")(models_score)
models_app.command("drift")(models_drift)
models_app.command("audit")(models_audit)
