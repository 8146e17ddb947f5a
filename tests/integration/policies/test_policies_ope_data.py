"""OPE on the simulator (against the on-policy truth) and on the real Hillstrom data (shipped in datasets/)."""

from __future__ import annotations

from pathlib import Path

from data.datasets import dataset_path
from environment.heuristics import EmailEveryK
from policies.ope_data import hillstrom_ope, simulator_ope


def _hillstrom() -> Path:
    return dataset_path("hillstrom", "hillstrom.csv")


def test_simulator_ope_is_close_to_on_policy_value() -> None:
    res = simulator_ope(EmailEveryK(), n_customers=30_000, seed=1, n_boot=100)
    for name in ("snips", "dr"):
        est = res["estimates"][name]
        assert abs(est.value / res["true"] - 1) < 0.12, (name, est, res["true"])
        assert est.ci_low < est.value < est.ci_high


def test_hillstrom_ope_single_arms_match_published_means() -> None:
    res = hillstrom_ope(_hillstrom(), seed=0, n_boot=100)
    arms = res["single_arms"]
    # half of the randomized data: each arm's SNIPS is its arm mean on that half (published: 1.42, 1.08, 0.65)
    assert 0.9 < arms["Mens E-Mail"].value < 1.9 and 0.4 < arms["No E-Mail"].value < 0.95
    for name in ("snips", "dr"):
        e = res["estimates"][name]
        assert e.ci_low < e.value < e.ci_high and e.n == res["n_test"]
    assert abs(sum(res["arm_shares"].values()) - 1) < 1e-9
