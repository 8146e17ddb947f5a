"""The SQLMesh project's variables: the constants the models read as ``@name``, defined once here.

The scores' fallback rules, the lifecycle and segment thresholds, attribution and sessions are business choices,
so they are named and documented here instead of written into the SQL. The lead tier cuts come from
``data/score_tiers.py``, the scoring agent's own tiers, on the probability scale the marts use (score / 100).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from data.score_tiers import HIGH_FROM, MEDIUM_FROM
from data.sharding import BROADCAST_CUSTOMER
from data.warehouse.column_docs import column_docs_digest


@dataclass(frozen=True, slots=True)
class ModelVariables:
    """The values the SQL models read.

    :param attribution_window_days: campaign touches this many days before a purchase share its credit.
    :param session_gap_seconds: a longer gap between two page views starts a new web session.
    :param churn_after_days: a buyer unseen for longer is churned (lifecycle) and lost (segment).
    :param at_risk_after_days: a buyer unseen for longer is at risk (segment).
    :param champion_min_purchases: purchases a champion has made at least ...
    :param champion_seen_within_days: ... and days within which a champion was last seen.
    :param churn_rule_days: the fallback churn risk is ``1 - exp(-days unseen / churn_rule_days)``.
    :param clv_min_tenure_days: the fallback CLV's purchase rate counts at least this many days of tenure.
    :param clv_horizon_years: the fallback CLV counts this many years of purchases.
    :param lead_rule_page_view_weight: weight of a page view in the fallback lead score,
        ``1 - exp(-(weights x counts))``.
    :param lead_rule_download_weight: weight of a content download in it.
    :param lead_rule_email_click_weight: weight of an email click in it.
    :param lead_rule_form_weight: added once when the customer filled in a form.
    :param lead_tier_high: lead scores (0-1) from this are High, when no lead model gave a tier.
    :param lead_tier_medium: lead scores (0-1) from this are Medium.
    :param broadcast_customer_id: the id of events that are no customer's (campaigns, promotions): never a customer.
    """

    attribution_window_days: int = 7
    session_gap_seconds: int = 1800
    churn_after_days: int = 180
    at_risk_after_days: int = 90
    champion_min_purchases: int = 3
    champion_seen_within_days: int = 30
    churn_rule_days: float = 90.0
    clv_min_tenure_days: int = 90
    clv_horizon_years: float = 3.0
    lead_rule_page_view_weight: float = 0.02
    lead_rule_download_weight: float = 0.3
    lead_rule_email_click_weight: float = 0.2
    lead_rule_form_weight: float = 0.5
    lead_tier_high: float = HIGH_FROM / 100
    lead_tier_medium: float = MEDIUM_FROM / 100
    broadcast_customer_id: str = BROADCAST_CUSTOMER


def project_variables(values: ModelVariables | None = None) -> dict[str, object]:
    """The ``variables`` of the SQLMesh config: the model variables and the digest of the column docs.

    SQLMesh caches parsed models by the files' times and the config; ``columns.yaml`` is read by a macro, so its
    digest is part of the config, and editing it reloads the descriptions.
    """
    return {**asdict(values or ModelVariables()), "column_docs_digest": column_docs_digest()}
