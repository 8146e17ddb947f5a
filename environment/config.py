"""The simulated market's parameters: one frozen pydantic model, loaded from ``market.yaml``.

The shipped ``market.yaml`` holds the parameters calibrated on the Hillstrom experiment
(``ame sim calibrate``); :func:`load_market_config` reads it, or another file given by path.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_CONFIG_PATH = Path(__file__).with_name("market.yaml")

Prob = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(ge=0.0)]


class ConfigError(ValueError):
    """The market configuration file is missing or invalid."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProfileModel(_Frozen):
    """How the observable profile (Hillstrom's columns) is drawn, and how it drives responsiveness."""

    recency_probs: list[Prob] = Field(default_factory=lambda: [1 / 12] * 12, min_length=12, max_length=12)
    log_history_mean: float = 5.0
    log_history_std: Positive = 1.03
    history_min: Positive = 29.99
    history_max: Positive = 3345.93
    gender_probs: list[Prob] = Field(
        default_factory=lambda: [0.45, 0.45, 0.10], min_length=3, max_length=3,
        description="P(mens only), P(womens only), P(both).",
    )
    newbie_prob: Prob = 0.5
    channel_probs: list[Prob] = Field(
        default_factory=lambda: [0.44, 0.44, 0.12], min_length=3, max_length=3, description="phone, web, multichannel"
    )
    zip_probs: list[Prob] = Field(
        default_factory=lambda: [0.40, 0.45, 0.15], min_length=3, max_length=3, description="urban, suburban, rural"
    )
    recency_mean: float = 5.76
    recency_std: Positive = 3.51
    propensity_coef: list[float] = Field(
        default_factory=lambda: [0.0] * 9, min_length=9, max_length=9,
        description="Log-rate coefficients of: recency_z, log_history_z, mens, womens, newbie, web, multichannel, "
        "suburban, rural (fitted on the no-e-mail arm).",
    )
    propensity_log_norm: float = Field(0.0, description="Subtracted so that the mean multiplier is 1.")
    consent_probs: list[Prob] = Field(
        default_factory=lambda: [0.92, 0.35, 0.30], min_length=3, max_length=3, description="email, sms, push"
    )
    initial_stage_probs: list[list[Prob]] = Field(
        default_factory=lambda: [
            [0.05, 0.25, 0.20, 0.45, 0.05],  # recency 1-4 months
            [0.10, 0.30, 0.15, 0.30, 0.15],  # 5-8
            [0.15, 0.30, 0.10, 0.20, 0.25],  # 9-12
        ],
        description="P(stage) by recency bucket; stages: unaware, engaged, considering, customer, churned.",
    )
    initial_intent_probs: list[Prob] = Field(default_factory=lambda: [0.6, 0.3, 0.1], min_length=3, max_length=3)


class CreativeModel(_Frozen):
    """An e-mail creative (Hillstrom's men's and women's e-mails)."""

    click_scale: Positive = 1.0
    unmatched_mult: Positive = Field(1.0, description="Click multiplier for customers outside its audience.")
    click_conv_mult: Positive = Field(1.5, description="Conversion of a click-through visit, relative to organic.")
    click_basket_mult: Positive = 1.0


class JourneyModel(_Frozen):
    """The daily response model of a customer journey. Action order: wait, email, sms, push, ad, offer."""

    horizon_days: int = Field(60, ge=1, le=3650)
    min_days_between_contacts: int = Field(2, ge=1, le=7, description="The frequency cap: days between contacts.")
    cost: list[Positive] = Field(default_factory=lambda: [0.0, 0.01, 0.04, 0.005, 0.25, 0.01], min_length=6, max_length=6)
    open_rate: list[Prob] = Field(default_factory=lambda: [0.0, 0.22, 0.90, 0.45, 1.0, 0.25], min_length=6, max_length=6)
    click_rate: list[Prob] = Field(
        default_factory=lambda: [0.0, 0.03, 0.04, 0.015, 0.008, 0.04], min_length=6, max_length=6
    )
    unsub_rate: list[Prob] = Field(
        default_factory=lambda: [0.0, 0.002, 0.006, 0.004, 0.0, 0.002], min_length=6, max_length=6
    )
    unsub_value: list[Positive] = Field(
        default_factory=lambda: [5.0, 3.0, 1.0], min_length=3, max_length=3,
        description="Future value lost when a customer unsubscribes from email, sms, push.",
    )
    stage_click_mult: list[Positive] = Field(default_factory=lambda: [0.5, 1.0, 1.4, 1.0, 0.0], min_length=5, max_length=5)
    intent_click_mult: list[Positive] = Field(default_factory=lambda: [0.6, 1.0, 1.8], min_length=3, max_length=3)
    fatigue_click_mult: list[Positive] = Field(default_factory=lambda: [1.0, 0.8, 0.55, 0.3], min_length=4, max_length=4)
    fatigue_unsub_mult: list[Positive] = Field(default_factory=lambda: [1.0, 2.0, 4.0, 8.0], min_length=4, max_length=4)
    fatigue_churn_mult: list[Positive] = Field(default_factory=lambda: [1.0, 1.5, 3.0, 6.0], min_length=4, max_length=4)
    fatigue_decay: Prob = Field(0.3, description="P(fatigue drops a bucket) on a day without contact.")
    visit_hazard: list[Prob] = Field(
        default_factory=lambda: [0.003, 0.007, 0.012, 0.009, 0.0], min_length=5, max_length=5,
        description="Daily organic visit probability by stage (times intent and profile multipliers).",
    )
    intent_visit_mult: list[Positive] = Field(default_factory=lambda: [0.6, 1.0, 2.0], min_length=3, max_length=3)
    visit_scale: Positive = 1.0
    conv_rate: list[Prob] = Field(
        default_factory=lambda: [0.02, 0.04, 0.08, 0.06, 0.0], min_length=5, max_length=5,
        description="P(purchase | organic visit) by stage.",
    )
    intent_conv_mult: list[Positive] = Field(default_factory=lambda: [0.6, 1.0, 1.8], min_length=3, max_length=3)
    conv_scale: Positive = 1.0
    other_click_conv_mult: Positive = Field(1.3, description="Click conversion multiplier for sms, push and ad.")
    offer_conv_boost: Positive = 2.2
    offer_click_mult: Positive = 1.2
    discount_pct: Annotated[float, Field(gt=0, le=100)] = 20.0
    margin_rate: Prob = Field(0.35, description="Revenue counted in the reward: the gross margin of a purchase.")
    basket_mean: Positive = 115.0
    basket_log_sigma: Positive = 0.8
    advance_prob: Prob = Field(0.5, description="P(engaged -> considering) on a visit without purchase.")
    intent_up_on_visit: Prob = 0.3
    intent_up: Prob = 0.01
    intent_down: Prob = 0.03
    churn_hazard: list[Prob] = Field(default_factory=lambda: [0.0, 0.002, 0.002, 0.001, 0.0], min_length=5, max_length=5)
    mens: CreativeModel = CreativeModel()
    womens: CreativeModel = CreativeModel(unmatched_mult=0.2)

    @model_validator(mode="after")
    def _opens_cover_clicks(self) -> JourneyModel:
        for a in range(1, 6):
            if self.open_rate[a] <= 0:
                raise ValueError(f"open_rate[{a}] must be > 0 (a click needs an open)")
        return self


class AuctionModel(_Frozen):
    """The ad auction market of one campaign."""

    opportunities_per_day: int = Field(100_000, ge=96, le=1_000_000)
    slots_per_day: int = Field(96, ge=1, le=1440)
    days: int = Field(7, ge=1, le=365)
    segments: int = Field(16, ge=1, le=256)
    daily_budget: Positive = 150.0
    auction_type: str = Field("second_price", pattern="^(first_price|second_price)$")
    reserve_price: Positive = Field(0.002, description="The reserve price, $ per impression (bids are per impression).")
    value_per_conversion: Positive = 40.0
    base_ctr: Prob = 0.01
    base_cvr: Prob = 0.05
    ctr_log_sigma: Positive = 0.5
    cvr_log_sigma: Positive = 0.4
    estimate_log_sigma: Positive = Field(0.15, description="Noise of the bidder's pCTR*pCVR estimate.")
    competition_log_mean: float = Field(-4.2, description="log of the median competing bid ($ per impression).")
    competition_log_sigma: Positive = 0.6
    competition_value_corr: float = Field(0.6, description="How much competing bids follow the impression's value.")
    daily_drift: Positive = Field(0.15, description="Std of the day-to-day log factors of volume, competition, CTR.")
    drift_persistence: Prob = 0.5
    competitor_adaptation: Positive = Field(0.8, description="Competition next day *= (1 + a * (win rate - target)).")
    competitor_target_win_rate: Prob = 0.15
    conversion_delay_slots: Positive = Field(8.0, description="Mean delay of a conversion, in slots.")
    max_multiplier: Positive = 10.0
    max_bid: Positive = 5.0
    segment_seed: int = Field(20240601, description="Seed of the fixed segment table (part of the market).")


class MarketConfig(_Frozen):
    """Everything the simulated market needs; the calibrated defaults live in ``environment/market.yaml``."""

    profile: ProfileModel = ProfileModel()
    journey: JourneyModel = JourneyModel()
    auction: AuctionModel = AuctionModel()
    calibration: dict[str, float] = Field(default_factory=dict, description="Fit report of the calibration run.")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, width=120)

    def with_unsub_price(self, price: float) -> MarketConfig:
        """The same market with every unsubscribe costing ``price`` times its value: a Lagrangian price on
        unsubscribes for planning and training (evaluation always uses the market's own values)."""
        if not price > 0:
            raise ValueError(f"the unsubscribe price must be > 0, got {price}")
        values = [v * price for v in self.journey.unsub_value]
        return self.model_copy(update={"journey": self.journey.model_copy(update={"unsub_value": values})})


def load_market_config(path: str | Path | None = None) -> MarketConfig:
    """Load a market configuration; without a path, the calibrated default shipped with the package."""
    if path is None:
        return _default_config()
    return _read(Path(path))


@lru_cache(maxsize=1)
def _default_config() -> MarketConfig:
    return _read(DEFAULT_CONFIG_PATH) if DEFAULT_CONFIG_PATH.exists() else MarketConfig()


def _read(path: Path) -> MarketConfig:
    if not path.exists():
        raise ConfigError(f"market config {path} not found; run `ame sim calibrate --out {path}` or omit the path")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        return MarketConfig.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as error:
        raise ConfigError(f"market config {path} is invalid: {error}") from None
