"""The customer population: observable profiles (Hillstrom's columns) and the latent state they start in.

Everything here is a pure numpy batch function of a config and a ``np.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from environment.config import JourneyModel, ProfileModel

STAGES = ("unaware", "engaged", "considering", "customer", "churned")
CUSTOMER, CHURNED = 3, 4
N_STAGES, N_INTENT, N_FATIGUE, N_CONSENT_BITS = 5, 3, 4, 3
ACTIONS = ("wait", "email", "sms", "push", "ad", "offer")
WAIT, EMAIL, SMS, PUSH, AD, OFFER = range(6)
N_ACTIONS = len(ACTIONS)
CONSENT_CHANNELS = ("email", "sms", "push")
ACTION_CONSENT_BIT = np.array([0, 1, 2, 4, 0, 1], dtype=np.int64)
"""The consent bit an action needs (email=1, sms=2, push=4); 0 means none (wait, ad)."""
ACTION_UNSUB_CHANNEL = np.array([-1, 0, 1, 2, -1, 0], dtype=np.int64)
CONTACT_EVENT = ("", "email_sent", "sms_sent", "push_sent", "ad_impression", "offer_sent")
"""The event each action's contact shows as (ACTIONS order)."""
OPEN_EVENT = ("", "email_open", "", "push_open", "", "email_open")
"""The event an open of each action's contact shows as; "" where no event shows it (an SMS read, an ad seen)."""
CLICK_EVENT = ("", "email_click", "sms_click", "", "ad_click", "email_click")
"""The event a click shows as; "" where none does (a push tapped shows as its open, then the visit)."""
OPEN_OBSERVED = np.array([bool(e) for e in OPEN_EVENT])
CLICK_OBSERVED = np.array([bool(e) for e in CLICK_EVENT])
CHANNELS = ("phone", "web", "multichannel")
ZIPS = ("urban", "suburban", "rural")
CREATIVES = ("mens", "womens")
PROFILE_FEATURES = (
    "recency_z", "log_history_z", "mens", "womens", "newbie", "web", "multichannel", "suburban", "rural",
)


@dataclass(frozen=True, slots=True)
class Profiles:
    """Observable attributes of N customers (arrays of length N)."""

    recency: np.ndarray  # int, months since last purchase, 1..12
    history: np.ndarray  # float, dollars spent in the past year
    mens: np.ndarray  # int 0/1
    womens: np.ndarray  # int 0/1
    newbie: np.ndarray  # int 0/1
    channel: np.ndarray  # int index into CHANNELS
    zip_type: np.ndarray  # int index into ZIPS

    def __len__(self) -> int:
        return int(self.recency.shape[0])

    def subset(self, index: np.ndarray) -> Profiles:
        return Profiles(*(getattr(self, f)[index] for f in self.__slots__))


@dataclass(frozen=True, slots=True)
class Responsiveness:
    """Per-customer response parameters derived from the profile (what the oracle's DP is solved for).

    ``click_mult``, ``click_conv`` and ``click_basket`` are (N, 6) arrays indexed by action.
    """

    propensity: np.ndarray  # (N,) multiplier on visit and click rates, mean 1
    basket: np.ndarray  # (N,) mean purchase amount
    click_mult: np.ndarray
    click_conv: np.ndarray
    click_basket: np.ndarray

    def __len__(self) -> int:
        return int(self.propensity.shape[0])

    def subset(self, index: np.ndarray) -> Responsiveness:
        return Responsiveness(*(getattr(self, f)[index] for f in self.__slots__))


def sample_profiles(model: ProfileModel, n: int, rng: np.random.Generator) -> Profiles:
    """Draw ``n`` profiles from the fitted marginals of the population."""
    recency = rng.choice(12, size=n, p=_normed(model.recency_probs)) + 1
    history = np.clip(
        np.exp(rng.normal(model.log_history_mean, model.log_history_std, size=n)), model.history_min, model.history_max
    )
    gender = rng.choice(3, size=n, p=_normed(model.gender_probs))
    mens = (gender != 1).astype(np.int64)
    womens = (gender != 0).astype(np.int64)
    newbie = (rng.random(n) < model.newbie_prob).astype(np.int64)
    channel = rng.choice(3, size=n, p=_normed(model.channel_probs))
    zip_type = rng.choice(3, size=n, p=_normed(model.zip_probs))
    return Profiles(recency, np.round(history, 2), mens, womens, newbie, channel, zip_type)


def profile_design(model: ProfileModel, profiles: Profiles) -> np.ndarray:
    """The (N, 9) design matrix of :data:`PROFILE_FEATURES` (also used to fit the propensity model)."""
    return np.column_stack(
        [
            (profiles.recency - model.recency_mean) / model.recency_std,
            (np.log(profiles.history) - model.log_history_mean) / max(model.log_history_std, 1e-9),
            profiles.mens,
            profiles.womens,
            profiles.newbie,
            profiles.channel == 1,
            profiles.channel == 2,
            profiles.zip_type == 1,
            profiles.zip_type == 2,
        ]
    ).astype(np.float64)


def matched_creative(profiles: Profiles) -> np.ndarray:
    """The e-mail creative a customer gets in the journey: women's for women-only buyers, else men's."""
    return ((profiles.womens == 1) & (profiles.mens == 0)).astype(np.int64)


def responsiveness(
    profile_model: ProfileModel, journey: JourneyModel, profiles: Profiles, creative: np.ndarray | None = None
) -> Responsiveness:
    """Per-customer response multipliers; ``creative`` (0 men's, 1 women's) picks the e-mail sent."""
    n = len(profiles)
    creative = matched_creative(profiles) if creative is None else np.asarray(creative, dtype=np.int64)
    # a row-wise sum, not a matrix product: BLAS groups a product's additions by the batch, and a customer's
    # multipliers must be the same bits alone as among any others (the agents fold customers in any batches)
    lp = (profile_design(profile_model, profiles) * np.asarray(profile_model.propensity_coef)).sum(axis=1)
    propensity = np.exp(lp - profile_model.propensity_log_norm)
    mens, womens = journey.mens, journey.womens
    in_audience = np.where(creative == 0, profiles.mens == 1, profiles.womens == 1)
    scale = np.where(creative == 0, mens.click_scale, womens.click_scale)
    unmatched = np.where(creative == 0, mens.unmatched_mult, womens.unmatched_mult)
    email_mult = scale * np.where(in_audience, 1.0, unmatched)
    email_conv = np.where(creative == 0, mens.click_conv_mult, womens.click_conv_mult)
    email_basket = np.where(creative == 0, mens.click_basket_mult, womens.click_basket_mult)
    ones = np.ones(n)
    other_conv = journey.other_click_conv_mult * ones
    click_mult = np.column_stack([0 * ones, email_mult, ones, ones, ones, email_mult * journey.offer_click_mult])
    click_mult *= propensity[:, None]
    click_conv = np.column_stack([ones, email_conv, other_conv, other_conv, other_conv, email_conv])
    click_basket = np.column_stack([ones, email_basket, ones, ones, ones, email_basket])
    basket = journey.basket_mean * ones
    return Responsiveness(propensity, basket, click_mult, click_conv, click_basket)


def initial_latent(
    model: ProfileModel, profiles: Profiles, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial (stage, intent, consent bits) of each customer; stage depends on recency."""
    n = len(profiles)
    bucket = np.minimum((profiles.recency - 1) // 4, 2)
    cum_stage = np.cumsum(np.asarray(model.initial_stage_probs, dtype=np.float64), axis=1)
    cum_stage /= cum_stage[:, -1:]
    u = rng.random((5, n))
    stage = (u[0][:, None] > cum_stage[bucket]).sum(axis=1)
    cum_intent = np.cumsum(_normed(model.initial_intent_probs))
    intent = (u[1][:, None] > cum_intent[None, :]).sum(axis=1)
    probs = np.asarray(model.consent_probs)
    consent = (u[2] < probs[0]) * 1 + (u[3] < probs[1]) * 2 + (u[4] < probs[2]) * 4
    return stage.astype(np.int64), np.minimum(intent, N_INTENT - 1).astype(np.int64), consent.astype(np.int64)


def _normed(p: list[float]) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    return arr / arr.sum()
