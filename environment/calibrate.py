"""Calibration on the Hillstrom e-mail experiment (64,000 customers, men's / women's / no e-mail, randomized).

Two parts:

1. **Fitted directly from the data**: the profile marginals, a propensity model (logistic regression of a
   visit on the profile, no-e-mail arm), how much each creative works outside its audience, the spread of
   the purchase amount.
2. **Fitted by simulation**: nine scalars (organic visit and conversion scales, the basket, and per creative
   the click scale, click conversion and click basket) are adjusted by a damped fixed point until the
   simulated one-shot campaign (:func:`simulate_campaign`, common random numbers) reproduces the arm means.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from environment.config import ConfigError, CreativeModel, JourneyModel, MarketConfig, ProfileModel
from environment.dynamics import Tables, reset_batch, step_batch
from environment.population import EMAIL, WAIT, Profiles, profile_design, sample_profiles

logger = logging.getLogger(__name__)

ARMS = ("Mens E-Mail", "Womens E-Mail", "No E-Mail")
METRICS = ("visit", "conversion", "spend")
CAMPAIGN_DAYS = 14
COLUMNS = ("recency", "history", "mens", "womens", "zip_code", "newbie", "channel", "segment", "visit", "conversion", "spend")
_CHANNELS = {"Phone": 0, "Web": 1, "Multichannel": 2}
_ZIPS = {"Urban": 0, "Surburban": 1, "Suburban": 1, "Rural": 2}


@dataclass(frozen=True, slots=True)
class ArmMeans:
    """Per-customer means of one arm."""

    visit: float
    conversion: float
    spend: float

    def as_dict(self) -> dict[str, float]:
        return {"visit": self.visit, "conversion": self.conversion, "spend": self.spend}


def load_hillstrom(path: str | Path) -> pd.DataFrame:
    """Read the Hillstrom CSV and check its columns."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} not found; pass --data ../shared/data/hillstrom/hillstrom.csv")
    frame = pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigError(f"{path} lacks the Hillstrom columns {missing}; is it the MineThatData file?")
    unknown = set(frame["segment"]) - set(ARMS)
    if unknown:
        raise ConfigError(f"{path}: unknown segments {sorted(unknown)}; expected {list(ARMS)}")
    return frame


def real_arm_means(frame: pd.DataFrame) -> dict[str, ArmMeans]:
    """The observed arm means (visit, conversion, spend per customer)."""
    grouped = frame.groupby("segment")[list(METRICS)].mean()
    return {arm: ArmMeans(*(float(grouped.loc[arm, m]) for m in METRICS)) for arm in ARMS}


def profiles_of(frame: pd.DataFrame) -> Profiles:
    return Profiles(
        recency=frame["recency"].to_numpy(np.int64),
        history=frame["history"].to_numpy(np.float64),
        mens=frame["mens"].to_numpy(np.int64),
        womens=frame["womens"].to_numpy(np.int64),
        newbie=frame["newbie"].to_numpy(np.int64),
        channel=frame["channel"].map(_CHANNELS).to_numpy(np.int64),
        zip_type=frame["zip_code"].map(_ZIPS).to_numpy(np.int64),
    )


def fit_profile_model(frame: pd.DataFrame, base: ProfileModel) -> ProfileModel:
    """Profile marginals and the propensity model (logistic regression of visit, no-e-mail arm)."""
    p = profiles_of(frame)
    log_history = np.log(p.history)
    gender = np.where((p.mens == 1) & (p.womens == 1), 2, np.where(p.womens == 1, 1, 0))
    model = base.model_copy(
        update={
            "recency_probs": list(np.bincount(p.recency - 1, minlength=12) / len(p)),
            "log_history_mean": float(log_history.mean()),
            "log_history_std": float(log_history.std()),
            "history_min": float(p.history.min()),
            "history_max": float(p.history.max()),
            "gender_probs": list(np.bincount(gender, minlength=3) / len(p)),
            "newbie_prob": float(p.newbie.mean()),
            "channel_probs": list(np.bincount(p.channel, minlength=3) / len(p)),
            "zip_probs": list(np.bincount(p.zip_type, minlength=3) / len(p)),
            "recency_mean": float(p.recency.mean()),
            "recency_std": float(p.recency.std()),
        }
    )
    design = profile_design(model, p)
    control = (frame["segment"] == "No E-Mail").to_numpy()
    coef = _logistic_fit(design[control], frame["visit"].to_numpy(np.float64)[control])[1:]
    norm = float(np.log(np.mean(np.exp(design @ coef))))
    return model.model_copy(update={"propensity_coef": [float(c) for c in coef], "propensity_log_norm": norm})


def unmatched_multipliers(frame: pd.DataFrame) -> tuple[float, float]:
    """Visit lift of each creative outside its audience relative to inside (single-gender buyers only)."""

    def lift(arm: str, mens: int, womens: int) -> float:
        sel = (frame["mens"] == mens) & (frame["womens"] == womens)
        treated = frame.loc[sel & (frame["segment"] == arm), "visit"].mean()
        control = frame.loc[sel & (frame["segment"] == "No E-Mail"), "visit"].mean()
        return max(float(treated - control), 1e-4)

    mens = lift("Mens E-Mail", 0, 1) / lift("Mens E-Mail", 1, 0)
    womens = lift("Womens E-Mail", 1, 0) / lift("Womens E-Mail", 0, 1)
    return float(np.clip(mens, 0.05, 2.0)), float(np.clip(womens, 0.05, 2.0))


def simulate_campaign(
    config: MarketConfig, n_per_arm: int, seed: int, expected_amounts: bool = True
) -> dict[str, ArmMeans]:
    """The one-shot Hillstrom campaign in the simulator: the same ``n_per_arm`` customers get the men's e-mail,
    the women's e-mail or nothing on day 0 (consent as in the experiment), then 14 days are counted.

    :param expected_amounts: count each purchase at its expected amount (a variance reduction that leaves the
        mean unchanged); False counts the drawn amounts.
    """
    tab = Tables.of(config.journey)
    base_rng = np.random.default_rng(seed)

    profiles = sample_profiles(config.profile, n_per_arm, base_rng)
    results: dict[str, ArmMeans] = {}
    for arm, creative, action in (("Mens E-Mail", 0, EMAIL), ("Womens E-Mail", 1, EMAIL), ("No E-Mail", 0, WAIT)):
        rng = np.random.default_rng(seed + 1)  # common random numbers across arms and calibration iterations
        state = reset_batch(config, n_per_arm, rng, profiles=profiles, creative=np.full(n_per_arm, creative))
        state = _with_email_consent(state)
        visited = np.zeros(n_per_arm, dtype=bool)
        bought = np.zeros(n_per_arm, dtype=bool)
        spend = np.zeros(n_per_arm)
        rows = np.arange(n_per_arm)
        for day in range(CAMPAIGN_DAYS):
            actions = np.full(n_per_arm, action if day == 0 else WAIT)
            resp = state.resp
            state, out = step_batch(state, actions, rng, tab)
            visited |= out.visited
            bought |= out.purchased
            if expected_amounts:  # the purchase's expected amount: same mean, less noise
                mean_amount = resp.basket * np.where(out.clicked, resp.click_basket[rows, out.action], 1.0)
                spend += np.where(out.purchased, mean_amount, 0.0)
            else:
                spend += out.amount
        results[arm] = ArmMeans(float(visited.mean()), float(bought.mean()), float(spend.mean()))
    return results


def calibrate(
    frame: pd.DataFrame,
    base: MarketConfig | None = None,
    n_per_arm: int = 400_000,
    iterations: int = 10,
    seed: int = 7,
    tolerance: float = 0.01,
) -> MarketConfig:
    """Fit the response parameters to the Hillstrom arm means; returns the calibrated config."""
    base = base or MarketConfig()
    target = real_arm_means(frame)
    profile = fit_profile_model(frame, base.profile)
    mens_unmatched, womens_unmatched = unmatched_multipliers(frame)
    spend = frame.loc[frame["conversion"] == 1, "spend"].to_numpy(np.float64)
    journey = base.journey.model_copy(
        update={
            "basket_log_sigma": float(np.log(spend).std()),
            "mens": base.journey.mens.model_copy(update={"unmatched_mult": mens_unmatched}),
            "womens": base.journey.womens.model_copy(update={"unmatched_mult": womens_unmatched}),
        }
    )
    config = base.model_copy(update={"profile": profile, "journey": journey})
    best, worst = config, np.inf
    for iteration in range(iterations):
        sim = simulate_campaign(config, n_per_arm, seed)
        error = max_relative_error(sim, target)
        logger.info("calibration iteration %d: worst relative error %.4f", iteration, error)
        if error < worst:
            best, worst = config, error
        if error < tolerance:
            break
        config = _update(config, sim, target)
    config = best
    report = {f"{arm.split()[0].lower()}_{m}_target": getattr(target[arm], m) for arm in ARMS for m in METRICS}
    report["worst_relative_error_in_fit"] = float(worst)
    report["n_per_arm"] = float(n_per_arm)
    return config.model_copy(update={"calibration": report})


def max_relative_error(sim: dict[str, ArmMeans], target: dict[str, ArmMeans]) -> float:
    return max(abs(getattr(sim[a], m) / getattr(target[a], m) - 1.0) for a in ARMS for m in METRICS)


def _update(config: MarketConfig, sim: dict[str, ArmMeans], target: dict[str, ArmMeans]) -> MarketConfig:
    j = config.journey
    ts, ss = target["No E-Mail"], sim["No E-Mail"]

    def ratio(t: float, s: float) -> float:
        return float(np.clip(t / s, 0.5, 2.0)) if s > 0 and t > 0 else 1.5

    visit_scale = j.visit_scale * ratio(-np.log1p(-ts.visit), -np.log1p(-ss.visit))
    conv_scale = j.conv_scale * ratio(ts.conversion / ts.visit, ss.conversion / ss.visit)
    basket = j.basket_mean * ratio(ts.spend / ts.conversion, ss.spend / ss.conversion)
    creatives: dict[str, CreativeModel] = {}
    for arm, name in (("Mens E-Mail", "mens"), ("Womens E-Mail", "womens")):
        c: CreativeModel = getattr(j, name)
        t, s = target[arm], sim[arm]
        dv_t, dv_s = t.visit - ts.visit, s.visit - ss.visit
        dc_t, dc_s = t.conversion - ts.conversion, s.conversion - ss.conversion
        dm_t, dm_s = t.spend - ts.spend, s.spend - ss.spend
        creatives[name] = c.model_copy(
            update={
                "click_scale": c.click_scale * ratio(dv_t, dv_s),
                "click_conv_mult": c.click_conv_mult * ratio(dc_t / max(dv_t, 1e-9), dc_s / max(dv_s, 1e-9)),
                "click_basket_mult": c.click_basket_mult * ratio(dm_t / max(dc_t, 1e-9), dm_s / max(dc_s, 1e-9)),
            }
        )
    journey: JourneyModel = j.model_copy(
        update={"visit_scale": visit_scale, "conv_scale": conv_scale, "basket_mean": basket, **creatives}
    )
    return config.model_copy(update={"journey": journey})


def _with_email_consent(state):  # everyone in the experiment could be e-mailed
    return replace(state, consent=state.consent | 1)


def _logistic_fit(x: np.ndarray, y: np.ndarray, iterations: int = 25, ridge: float = 1e-6) -> np.ndarray:
    """Logistic regression by Newton's method; returns [intercept, coefficients...]."""
    design = np.column_stack([np.ones(len(x)), x])
    beta = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        grad = design.T @ (y - p) - ridge * beta
        hess = (design * (p * (1 - p))[:, None]).T @ design + ridge * np.eye(len(beta))
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.abs(step).max() < 1e-8:
            break
    return beta
