"""The lead model's retrain on CRM outcomes, and its challenge against the champion.

The training table is built from the event history (:mod:`agents.history`: the log by position, or on a Pub/Sub
log the warehouse's raw_events) with the scoring agent's own fold (an observation is defined once): each
customer with an outcome (``opportunity_won`` or ``lead_converted``: 1, ``opportunity_lost``: 0; the latest wins)
gets the features :func:`agents.scoring.features_of` gives after folding their events that happened *before* the
outcome. The challenger is trained on it with the time split of ``policies.scoring.train`` (the newest outcomes are
the holdout); the champion (the registry's latest lead model, else the rule scorer the agent runs without one)
scores the same holdout rows, and :func:`policies.scoring.challenger.paired_bootstrap` decides. A promoted challenger
is saved to the registry, where the scoring agent and the API load their latest model; a kept one is not. Either way
a ``model_challenge`` event logs both AUCs, the difference and its CI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from agents.history import History, as_history, history_of
from agents.scoring import ScoringAgent, features_of
from data.events import ModelChallenge, derive_event_id
from data.log import EventLog, PositionalReader
from data.log.base import from_micros
from data.privacy.training import exclude_erased
from data.sharding import BROADCAST_CUSTOMER
from policies.scoring.challenger import ChallengeResult, paired_bootstrap
from policies.scoring.registry import ModelRegistry, frame_hash
from policies.scoring.report import model_card
from policies.scoring.train import TrainArgs, save_scoring, train_scoring

log = logging.getLogger(__name__)

LABELS = {"opportunity_won": 1, "lead_converted": 1, "opportunity_lost": 0}
TARGET, ID, TIME = "won", "customer_id", "outcome_at"


@dataclass(frozen=True, slots=True)
class RetrainArgs:
    """The retrain's knobs (CleanRL style: one dataclass, defaults that work)."""

    min_outcomes: int = 50
    bootstrap: int = 2_000
    confidence: float = 0.95
    seed: int = 7
    test_share: float = 0.25
    calibration_share: float = 0.2
    n_estimators: int = 300


@dataclass(frozen=True, slots=True)
class RetrainReport:
    rows: int
    positives: int
    challenge: ChallengeResult | None
    champion_version: str
    promoted_version: str | None
    skipped: str | None = None

    def line(self) -> str:
        if self.challenge is None:
            return f"skipped: {self.skipped}"
        c = self.challenge
        verdict = f"promoted as {self.promoted_version}" if self.promoted_version else f"kept {self.champion_version}"
        return (f"{verdict}: AUC challenger {c.challenger_auc:.3f} vs champion {c.champion_auc:.3f}, difference "
                f"{c.difference:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}] on {c.rows} holdout rows ({self.rows} outcomes)")


def outcome_labels(source: History | PositionalReader) -> dict[str, tuple[int, int]]:
    """Each customer's latest outcome: (label, occurred_at in microseconds)."""
    out: dict[str, tuple[int, int]] = {}
    for e in as_history(source).events(list(LABELS)):
        if e.customer_id not in out or e.occurred_at_us >= out[e.customer_id][1]:
            out[e.customer_id] = (LABELS[e.event_type], e.occurred_at_us)
    return out


def folded_records(source: History | PositionalReader, agent: ScoringAgent,
                   before_us: dict[str, int] | None = None) -> dict[str, dict]:
    """Each customer's scoring state: the agent's fold over their events (only those before ``before_us[customer]``,
    and only those customers, when it is given)."""
    records: dict[str, dict] = {}
    for event in as_history(source).events(sorted(agent.scored_types)):
        cut = None if before_us is None else before_us.get(event.customer_id)
        if before_us is None or (cut is not None and event.occurred_at_us < cut):
            records[event.customer_id] = agent.fold(records.get(event.customer_id), event)  # type: ignore[arg-type]
    return records


def feature_table(rows: list[dict]) -> pd.DataFrame:
    """Rows of :func:`features_of` as a table; an event type a customer never had counts 0."""
    frame = pd.DataFrame(rows)
    counts = [c for c in frame.columns if c.startswith("n_")]
    frame[counts] = frame[counts].fillna(0.0)
    return frame


def training_table(source: History | PositionalReader, agent: ScoringAgent | None = None) -> pd.DataFrame:
    """One row per customer with an outcome: the scoring features before it, the outcome's time and the label."""
    labels = outcome_labels(source)
    records = folded_records(source, agent or ScoringAgent(), {c: at for c, (_, at) in labels.items()})
    return feature_table([{ID: customer, TIME: from_micros(at_us), TARGET: label, **features_of(records.get(customer, {}))}
                          for customer, (label, at_us) in sorted(labels.items())])


def champion_probabilities(registry: ModelRegistry, frame: pd.DataFrame) -> tuple[str, np.ndarray]:
    """The champion's version and its probabilities of ``frame``'s rows: the registry's latest lead model, else
    the rule scorer (lead points / 100, what the scoring agent runs without a trained model)."""
    if registry.versions("lead"):
        model = registry.load_scoring("lead")
        return model.version, model.probability(model.matrix(frame))
    return "rules-1", np.clip(frame["lead_points"].to_numpy(dtype=float) / 100.0, 0.0, 1.0)


def retrain_lead(log_: EventLog, registry: ModelRegistry, now: datetime, args: RetrainArgs = RetrainArgs(),
                 log_url: str | None = None, warehouse_url: str | None = None) -> RetrainReport:
    """Train a challenger on the CRM outcomes, challenge the champion, promote or keep, log ``model_challenge``.
    The history is the log's (by position) or, on a log without positions, the warehouse's raw_events."""
    history = history_of(log_, warehouse_url)
    try:
        frame, _ = exclude_erased(training_table(history), ID, log_url)
    finally:
        history.close()
    positives = int(frame[TARGET].sum()) if len(frame) else 0
    champion = registry.versions("lead")[-1] if registry.versions("lead") else "rules-1"
    if len(frame) < args.min_outcomes or positives in (0, len(frame)):
        why = f"{len(frame)} outcomes ({positives} won); the retrain needs {args.min_outcomes} with won and lost both"
        return RetrainReport(len(frame), positives, None, champion, None, why)
    train_args = TrainArgs(target=TARGET, kind="lead", id_column=ID, time_column=TIME, seed=args.seed,
                           test_share=args.test_share, calibration_share=args.calibration_share,
                           n_estimators=args.n_estimators, source="log:crm_outcomes")
    result = train_scoring(frame, train_args)
    holdout = frame.iloc[result.test_rows]
    champion, p_champion = champion_probabilities(registry, holdout)
    p_challenger = result.model.probability(result.model.matrix(holdout))
    challenge = paired_bootstrap(holdout[TARGET].to_numpy(), p_champion, p_challenger, args.bootstrap, args.confidence, args.seed)
    promoted = None
    if challenge.promote:
        data_hash = frame_hash(frame)
        version = registry.new_version("lead", data_hash)
        result.model.version = version
        result.metadata["challenge"] = {**challenge.to_dict(), "champion_version": champion}
        save_scoring(result, registry, version, data_hash, model_card(result, version, data_hash))
        promoted = version
    report = RetrainReport(len(frame), positives, challenge, champion, promoted)
    log_.append([challenge_event(report, challenge, now)])
    log.info("lead retrain: %s", report.line())
    return report


def challenge_event(report: RetrainReport, c: ChallengeResult, now: datetime) -> ModelChallenge:
    """The log's record of one challenge, with both AUCs, the difference and its CI."""
    return ModelChallenge(
        event_id=derive_event_id("challenge", "lead", report.champion_version, now.isoformat(), at=now),
        customer_id=BROADCAST_CUSTOMER, occurred_at=now, source="agent:scheduler",
        properties={"kind": "lead", "champion_version": report.champion_version, "challenger_version": report.promoted_version,
                    "champion_auc": c.champion_auc, "challenger_auc": c.challenger_auc, "auc_difference": c.difference,
                    "ci_low": c.ci_low, "ci_high": c.ci_high, "confidence": c.confidence, "bootstrap": c.bootstrap,
                    "train_rows": report.rows - c.rows, "holdout_rows": c.rows,
                    "outcome": "promoted" if report.promoted_version else "kept"},
    )


def current_features(source: History | PositionalReader, agent: ScoringAgent | None = None) -> pd.DataFrame:
    """Every customer's scoring features now (the drift check's recent population)."""
    records = folded_records(source, agent or ScoringAgent())
    return feature_table([{ID: c, **features_of(r)} for c, r in records.items()])
