MODEL (
  name @{dataset}.marts_marketing_customer_360,
  kind VIEW,
  grain (customer_id),
  -- The key and the columns that do not depend on the date are audited where they are stored
  -- (staging_customers_summary: not-null customer_id and first_seen_at, unique customer_id, preferred_channel's
  -- values); this view only drops rows from it, so they hold here too. Each audit here evaluates the view.
  audits (
    not_null(columns := (lifecycle_stage, customer_segment)),
    accepted_values(column := lifecycle_stage, is_in := ('visitor', 'lead', 'customer', 'repeat_customer', 'churned')),
    accepted_values(column := customer_segment, is_in := ('anonymous', 'prospect', 'new', 'loyal', 'champion', 'at_risk', 'lost')),
    referential_integrity(column := customer_id, parent := @{dataset}.staging_customers_identity, parent_column := canonical_customer_id)
  ),
  description 'The unified customer profile: one row per resolved customer (identity applied), as of the
end of the build interval. A view: the columns that do not depend on the date are kept up to date incrementally in
staging_customers_summary (only the customers the new days touched are recomputed); the date-dependent ones
(churn_risk_score, predicted_clv, lifecycle_stage, customer_segment) are computed here against the build''s
execution date (staging_build_as_of), so every customer''s recency moves with each build. Scores come from the latest score_updated event of each model when the scoring
agent has sent one, else from the transparent fallbacks described per column (score_source says which).',
  column_descriptions (
    customer_id = 'Canonical customer id (staging_customers_identity).',
    email = 'Latest email from the customer''s forms.',
    first_name = 'Latest first name.',
    last_name = 'Latest last name.',
    acquisition_date = 'Day of the first lead event, else of the first event seen.',
    acquisition_source = 'acquisition_source of the first lead event, else the source of the first event.',
    first_seen_at = 'First event of any of the customer''s ids.',
    last_seen_at = 'Latest event.',
    total_purchases = 'Number of purchase events.',
    total_revenue = 'Sum of purchase amounts.',
    last_purchase_date = 'Day of the latest purchase.',
    page_views = 'Number of page views.',
    events_total = 'Number of events of any type (the profile projection''s events_total).',
    content_downloads = 'Number of content_download events.',
    email_opens = 'Number of email_open events.',
    email_clicks = 'Number of email_click events.',
    sms_clicks = 'Number of sms_click events.',
    push_opens = 'Number of push_open events.',
    ad_clicks = 'Number of ad_click events.',
    offers_received = 'Number of offer_sent events.',
    support_tickets = 'Number of support_ticket events.',
    last_purchase_at = 'Time of the latest purchase (event time).',
    last_channel = 'Channel of the latest inbound engagement in event time, ties broken by log position, as the
profile projection folds it (data/projections/profile.py ENGAGEMENT_CHANNEL): email_open/email_click email,
sms_click sms, push_open push, ad_click ad, page_view/content_download web.',
    consent_email = 'Latest consent_changed or unsubscribe on email in event time (ties: log position): true if
granted, false if withdrawn (an unsubscribe withdraws), null if the customer never said.',
    consent_sms = 'As consent_email, for sms.',
    consent_push = 'As consent_email, for push.',
    consent_ad = 'As consent_email, for ad.',
    lead_model_tier = 'tier (High, Medium, Low) of the latest lead score_updated event, null without one.',
    predicted_clv = 'Latest clv score, else average order value x purchases per year (tenure of at least 90 days) x 3 years x (1 - churn risk).',
    churn_risk_score = 'Latest churn score, else 1 - exp(-days since last seen / 90).',
    lead_score = 'Latest lead score, else 1 - exp(-(0.02 page views + 0.3 downloads + 0.2 email clicks + 0.5 if a form was filled in)).',
    score_source = 'model when all three scores come from score_updated events, mixed when some do, rule otherwise.',
    preferred_channel = 'Channel with the most engagement (opens and clicks); email when none.',
    lifecycle_stage = 'visitor, lead, customer (1 purchase), repeat_customer (2+), churned (buyer unseen for churn_after_days).',
    customer_segment = 'anonymous, prospect, new, loyal, champion (3+ purchases, seen in 30 days), at_risk (buyer unseen 90 days), lost (churned).',
    merged_ids = 'How many logged ids identity resolution merged into this customer.'
  )
);


WITH canonical AS (
  SELECT customer_id FROM @{dataset}.staging_customers_identity WHERE NOT is_merged
),
features AS (
  SELECT
    s.*,
    DATE_DIFF('day', CAST(s.last_seen_at AS DATE), a.execution_date) - 1 AS days_since_seen,
    GREATEST(DATE_DIFF('day', CAST(s.first_seen_at AS DATE), a.execution_date) - 1, 90) AS tenure_days
  FROM @{dataset}.staging_customers_summary AS s
  CROSS JOIN @{dataset}.staging_build_as_of AS a
  -- a customer merged into another keeps its old summary row: only canonical ids are customers
  WHERE s.customer_id IN (SELECT customer_id FROM canonical)
),
scored AS (
  SELECT *, COALESCE(churn_model, 1 - EXP(-days_since_seen / 90.0)) AS churn_risk_score FROM features
)
SELECT
  customer_id::VARCHAR AS customer_id,
  email::VARCHAR AS email,
  first_name::VARCHAR AS first_name,
  last_name::VARCHAR AS last_name,
  acquisition_date::DATE AS acquisition_date,
  acquisition_source::VARCHAR AS acquisition_source,
  first_seen_at::TIMESTAMP AS first_seen_at,
  last_seen_at::TIMESTAMP AS last_seen_at,
  total_purchases::BIGINT AS total_purchases,
  total_revenue::DOUBLE AS total_revenue,
  last_purchase_date::DATE AS last_purchase_date,
  page_views::BIGINT AS page_views,
  events_total::BIGINT AS events_total,
  content_downloads::BIGINT AS content_downloads,
  email_opens::BIGINT AS email_opens,
  email_clicks::BIGINT AS email_clicks,
  sms_clicks::BIGINT AS sms_clicks,
  push_opens::BIGINT AS push_opens,
  ad_clicks::BIGINT AS ad_clicks,
  offers_received::BIGINT AS offers_received,
  support_tickets::BIGINT AS support_tickets,
  last_purchase_at::TIMESTAMP AS last_purchase_at,
  last_channel::VARCHAR AS last_channel,
  consent_email::BOOLEAN AS consent_email,
  consent_sms::BOOLEAN AS consent_sms,
  consent_push::BOOLEAN AS consent_push,
  consent_ad::BOOLEAN AS consent_ad,
  lead_model_tier::VARCHAR AS lead_model_tier,
  COALESCE(
    clv_model,
    CASE WHEN total_purchases > 0
      THEN total_revenue / total_purchases * (total_purchases * 365.0 / tenure_days) * 3 * (1 - churn_risk_score)
      ELSE 0 END
  )::DOUBLE AS predicted_clv,
  churn_risk_score::DOUBLE AS churn_risk_score,
  lead_score::DOUBLE AS lead_score,
  score_source::VARCHAR AS score_source,
  preferred_channel::VARCHAR AS preferred_channel,
  CASE
    WHEN total_purchases > 0 AND days_since_seen > @churn_after_days THEN 'churned'
    WHEN total_purchases >= 2 THEN 'repeat_customer'
    WHEN total_purchases = 1 THEN 'customer'
    WHEN lead_created_at IS NOT NULL OR email IS NOT NULL THEN 'lead'
    ELSE 'visitor'
  END::VARCHAR AS lifecycle_stage,
  CASE
    WHEN total_purchases > 0 AND days_since_seen > @churn_after_days THEN 'lost'
    WHEN total_purchases > 0 AND days_since_seen > 90 THEN 'at_risk'
    WHEN total_purchases >= 3 AND days_since_seen <= 30 THEN 'champion'
    WHEN total_purchases >= 2 THEN 'loyal'
    WHEN total_purchases = 1 THEN 'new'
    WHEN lead_created_at IS NOT NULL OR email IS NOT NULL THEN 'prospect'
    ELSE 'anonymous'
  END::VARCHAR AS customer_segment,
  merged_ids::BIGINT AS merged_ids
FROM scored
