"""Fairness audits: per-group figures against hand-counted values, Wilson intervals against the formula, the
ECE against the headline metric's, bins, bounds, and training that refuses a model with a known disparity."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from policies.cli import models_app, train_app
from policies.scoring.errors import DataError, ScoringError
from policies.scoring.fairness import (
    AGE_EDGES,
    AuditArgs,
    SensitiveColumn,
    difference_interval,
    fairness_audit,
    parse_sensitive,
    resolve_sensitive,
    wilson,
)
from policies.scoring.fairness_bounds import FairnessBoundExceeded, check_bounds, parse_bound
from policies.scoring.metrics import evaluate
from policies.scoring.registry import ModelRegistry
from policies.scoring.train import TrainArgs, main

runner = CliRunner()


def known_groups() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Group A: 100 rows, 40 positives (30 selected), 60 negatives (6 selected), p = 0.5.
    Group B: 200 rows, 50 positives (20 selected), 150 negatives (30 selected), p = 0.25."""
    def group(n_pos: int, sel_pos: int, n_neg: int, sel_neg: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.r_[np.ones(n_pos), np.zeros(n_neg)]
        selected = np.r_[np.arange(n_pos) < sel_pos, np.arange(n_neg) < sel_neg]
        return y, selected
    ya, sa = group(40, 30, 60, 6)
    yb, sb = group(50, 20, 150, 30)
    frame = pd.DataFrame({"gender": ["A"] * 100 + ["B"] * 200})
    p = np.r_[np.full(100, 0.5), np.full(200, 0.25)]
    return frame, np.r_[ya, yb], p, np.where(np.r_[sa, sb], 90.0, 10.0)


def wilson_formula(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    phat = k / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_group_figures_match_the_hand_counts() -> None:
    frame, y, p, scores = known_groups()
    audit = fairness_audit(frame, [SensitiveColumn(name="gender")], y, p, scores, AuditArgs(threshold=80, resamples=200))
    column = audit["columns"][0]
    assert column["reference"] == "B"  # the largest group
    a, b = (next(g for g in column["groups"] if g["group"] == name) for name in ("A", "B"))
    assert (a["rows"], a["positives"], b["rows"], b["positives"]) == (100, 40, 200, 50)
    assert a["selection_rate"]["value"] == pytest.approx(36 / 100) and b["selection_rate"]["value"] == pytest.approx(50 / 200)
    assert a["tpr"]["value"] == pytest.approx(0.75) and b["tpr"]["value"] == pytest.approx(0.4)
    assert a["fpr"]["value"] == pytest.approx(0.1) and b["fpr"]["value"] == pytest.approx(0.2)
    assert a["calibration_gap"]["value"] == pytest.approx(0.1) and b["calibration_gap"]["value"] == pytest.approx(0.0)
    assert a["tpr"]["low"] == pytest.approx(wilson_formula(30, 40)[0]) and a["tpr"]["high"] == pytest.approx(wilson_formula(30, 40)[1])
    tpr = column["disparities"]["tpr"]
    assert tpr["group"] == "A" and tpr["difference"] == pytest.approx(0.35) and tpr["ratio"] == pytest.approx(0.75 / 0.4)
    fpr = column["disparities"]["fpr"]
    assert fpr["difference"] == pytest.approx(-0.1) and fpr["ratio"] == pytest.approx(0.5)
    assert audit["overall"]["tpr"]["value"] == pytest.approx(50 / 90)


def test_the_difference_interval_is_newcombes() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 against 48/80, method 10: 0.0524 to 0.3339
    low, high = difference_interval(wilson(56, 70), wilson(48, 80))
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_a_group_below_min_count_is_shown_but_not_judged() -> None:
    frame, y, p, scores = known_groups()
    audit = fairness_audit(frame, [SensitiveColumn(name="gender")], y, p, scores, AuditArgs(min_count=45, resamples=50))
    column = audit["columns"][0]
    assert {g["group"] for g in column["groups"]} == {"A", "B"}
    assert column["disparities"]["tpr"] is None  # A has 40 positives < 45
    assert column["disparities"]["fpr"]["group"] == "A"  # A has 60 negatives


def test_ece_per_group_equals_the_headline_ece_and_its_interval_covers_it() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.6, 1_000)
    y = (rng.random(1_000) < p * 0.8).astype(int)
    frame = pd.DataFrame({"segment": ["all"] * 1_000})
    audit = fairness_audit(frame, [SensitiveColumn(name="segment")], y, p, p * 100, AuditArgs(resamples=300))
    ece = audit["columns"][0]["groups"][0]["ece"]
    assert ece["value"] == pytest.approx(evaluate(y, p)["ece"])
    gap = audit["overall"]["calibration_gap"]
    assert gap["low"] < float(np.mean(p - y)) < gap["high"] and gap["low"] > 0  # p is 25% too high on average


def test_sensitive_declarations_and_bins() -> None:
    assert parse_sensitive("age=25,35") == SensitiveColumn(name="age", edges=(25.0, 35.0))
    with pytest.raises(DataError, match="increasing"):
        parse_sensitive("age=35,25")
    frame = pd.DataFrame({"age": [19, 30, 44, 61, 70, 80, 22, 33, 50, 57, 66, 29], "income": np.arange(12) * 1000.0,
                          "flag": [0, 1] * 6})
    assert resolve_sensitive(SensitiveColumn(name="age"), frame).edges == AGE_EDGES
    assert resolve_sensitive(SensitiveColumn(name="flag"), frame).edges is None
    income = resolve_sensitive(SensitiveColumn(name="income"), frame)
    assert income.edges is not None and len(income.edges) == 4
    groups = SensitiveColumn(name="age", edges=AGE_EDGES).groups(frame.assign(age=frame["age"].astype(float).where(frame.index != 0)))
    assert groups.tolist()[:6] == ["<missing>", "25-35", "35-45", "55-65", ">=65", ">=65"]
    assert groups[6] == "<25" and groups[1] == "25-35"  # 25 belongs to 25-35, 35 to 35-45


def test_bounds_parse_and_judge() -> None:
    assert parse_bound("tpr_diff=0.1").metric == "tpr" and parse_bound("selection_ratio=0.8").kind == "ratio"
    for bad in ("tpr=0.1", "accuracy_diff=0.1", "ece_ratio=0.8", "selection_ratio=1.5"):
        with pytest.raises(ScoringError):
            parse_bound(bad)
    frame, y, p, scores = known_groups()
    audit = fairness_audit(frame, [SensitiveColumn(name="gender")], y, p, scores, AuditArgs(resamples=50))
    check_bounds(audit, (parse_bound("tpr_diff=0.36"), parse_bound("fpr_ratio=0.5")), "the model")  # 0.35 and 0.5: within
    with pytest.raises(FairnessBoundExceeded, match=r"tpr_diff=0.3: gender=A has TPR 0.750 .* against 0.400 .* difference \+0.350"):
        check_bounds(audit, (parse_bound("tpr_diff=0.3"),), "the model")
    with pytest.raises(FairnessBoundExceeded, match=r"selection_ratio=0\.8: gender=A has selection rate 0\.360"):
        check_bounds(audit, (parse_bound("selection_ratio=0.8"),), "the model")  # 0.36 / 0.25 = 1.44 > 1.25


def biased_leads(n: int = 4_000, seed: int = 11) -> pd.DataFrame:
    """The outcome depends on a latent interest alone; the recorded engagement under-reads group B's interest
    by one unit, so a model of engagement selects B's positives less often (a known TPR gap)."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["A", "B"], n)
    interest = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * interest - 1.5)))).astype(int)
    engagement = interest + rng.normal(scale=0.3, size=n) - np.where(gender == "B", 1.0, 0.0)
    return pd.DataFrame({"engagement": engagement, "noise": rng.normal(size=n), "gender": gender,
                         "age": rng.integers(18, 80, n), "won": y})


def test_training_audits_the_test_split_and_refuses_a_model_over_its_bound(tmp_path: Path) -> None:
    frame = biased_leads()
    registry = ModelRegistry(tmp_path / "models")
    base = {"target": "won", "n_estimators": 80, "n_threads": 1, "sensitive": ("gender", "age")}
    result = main(frame, TrainArgs(**base), registry)
    assert "gender" not in result.model.spec.input_names and "age" not in result.model.spec.input_names
    assert result.metadata["sensitive"][1] == {"name": "age", "edges": list(AGE_EDGES)}
    gender = result.metrics["fairness"]["columns"][0]
    tpr = {g["group"]: g["tpr"]["value"] for g in gender["groups"]}
    assert tpr["A"] - tpr["B"] > 0.3  # the built-in measurement bias
    card = (result.path / "model_card.md").read_text()
    assert "## Fairness on the test split" in card and "### gender" in card and "### age (bins" in card

    with pytest.raises(FairnessBoundExceeded, match=r"tpr_diff=0.1: gender=\w has TPR"):
        main(frame, TrainArgs(**base, fairness_bounds=("tpr_diff=0.1",)), registry)
    assert len(registry.versions("lead")) == 1  # the refused model was not registered

    with_feature = main(frame, TrainArgs(**base, sensitive_as_feature=True), registry)
    assert "gender" in with_feature.model.spec.input_names


def test_cli_audit_json_and_a_refused_training_run(tmp_path: Path) -> None:
    csv = tmp_path / "leads.csv"
    biased_leads(2_000).to_csv(csv, index=False)
    registry = str(tmp_path / "models")
    trained = runner.invoke(train_app, ["scoring", "--csv", str(csv), "--target", "won", "--sensitive", "gender",
                                        "--sensitive", "age=30,50", "--registry", registry], env={"COLUMNS": "200"})
    assert trained.exit_code == 0, trained.output
    assert "Largest disparity" in trained.output and "gender" in trained.output
    audited = runner.invoke(models_app, ["audit", "--csv", str(csv), "--registry", registry, "--json", "--resamples", "100"])
    assert audited.exit_code == 0, audited.output
    audit = json.loads(audited.output)
    assert [c["column"] for c in audit["columns"]] == ["gender", "age"]
    assert [g["group"] for g in audit["columns"][1]["groups"]] == ["<30", "30-50", ">=50"]
    assert sum(g["rows"] for g in audit["columns"][0]["groups"]) == audit["rows"] == 2_000
    refused = runner.invoke(train_app, ["scoring", "--csv", str(csv), "--target", "won", "--sensitive", "gender",
                                        "--fairness-bound", "tpr_diff=0.1", "--registry", registry], env={"COLUMNS": "200"})
    assert refused.exit_code == 2
    assert "was not registered" in refused.output and "TPR" in refused.output and "gender=" in refused.output
    assert len(ModelRegistry(registry).versions("lead")) == 1
    no_column = runner.invoke(models_app, ["audit", "--csv", str(csv), "--registry", registry, "--sensitive", "race"])
    assert no_column.exit_code == 2 and "'race' is not in the table" in no_column.output


def test_bad_fairness_options_fail_before_training(tmp_path: Path) -> None:
    csv = tmp_path / "leads.csv"
    biased_leads(300).to_csv(csv, index=False)
    cases = {
        ("--fairness-bound", "tpr_diff=0.1"): "needs the sensitive columns it applies to",
        ("--sensitive", "gender", "--fairness-bound", "tpr=0.1"): "is not METRIC_diff=V or METRIC_ratio=V",
        ("--sensitive", "won"): "cannot be a sensitive column",
        ("--sensitive", "region"): "sensitive column(s) ['region'] not in the table",
    }
    for options, message in cases.items():
        result = runner.invoke(train_app, ["scoring", "--csv", str(csv), "--target", "won", *options, "--registry", str(tmp_path / "m")],
                               env={"COLUMNS": "300"})
        assert result.exit_code == 2 and message in result.output, (options, result.output)
    assert not (tmp_path / "m").exists()


def test_a_named_reference_group_is_used_and_a_wrong_one_is_refused() -> None:
    frame, y, p, scores = known_groups()
    audit = fairness_audit(frame, [SensitiveColumn(name="gender")], y, p, scores, AuditArgs(resamples=50, reference=(("gender", "A"),)))
    tpr = audit["columns"][0]["disparities"]["tpr"]
    assert tpr["reference"] == "A" and tpr["group"] == "B" and tpr["difference"] == pytest.approx(-0.35)
    for reference, message in (((("gender", "C"),), "no such group"), ((("region", "A"),), "not audited")):
        with pytest.raises(DataError, match=message):
            fairness_audit(frame, [SensitiveColumn(name="gender")], y, p, scores, AuditArgs(resamples=50, reference=reference))
