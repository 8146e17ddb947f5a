MODEL (
  name @{dataset}.marts_marketing_customer_360,
  kind VIEW,
  grain (customer_id),
  -- The key and first_seen_at are audited where they are stored (intermediate_customers_summary: not null, unique
  -- customer_id); this view only drops rows from it, so they hold here too. Each audit here evaluates the view.
  audits (
    not_null(columns := (lifecycle_stage, customer_segment)),
    accepted_values(column := lifecycle_stage, is_in := ('visitor', 'lead', 'customer', 'repeat_customer', 'churned')),
    accepted_values(column := customer_segment, is_in := ('anonymous', 'prospect', 'new', 'loyal', 'champion', 'at_risk', 'lost')),
    referential_integrity(column := customer_id, parent := @{dataset}.intermediate_identity, parent_column := canonical_customer_id)
  ),
  description 'The unified customer profile: one row per resolved customer (identity applied), as of the
end of the build interval. A view over intermediate_customers_summary (kept up to date incrementally: only the
customers the new days touched are recomputed) that adds the definitions: the scores, the preferred channel, and the
date-dependent columns (churn_risk_score, predicted_clv, lifecycle_stage, customer_segment), computed against the
build''s execution date (staging_build_as_of), so every customer''s recency moves with each build. Scores come from
the latest score_updated event of each model when the scoring agent has sent one, else from the transparent
fallbacks described per column (score_source says which). Their constants are the project''s variables
(data/warehouse/variables.py).',
  column_descriptions @column_docs(marts_marketing_customer_360)
);

WITH canonical AS (
  SELECT customer_id FROM @{dataset}.intermediate_identity WHERE NOT is_merged
),
features AS (
  SELECT
    s.*,
    DATE_DIFF('day', CAST(s.last_seen_at AS DATE), a.execution_date) - 1 AS days_since_seen,
    GREATEST(DATE_DIFF('day', CAST(s.first_seen_at AS DATE), a.execution_date) - 1, @clv_min_tenure_days) AS tenure_days
  FROM @{dataset}.intermediate_customers_summary AS s
  CROSS JOIN @{dataset}.staging_build_as_of AS a
  -- a customer merged into another keeps its old summary row: only canonical ids are customers
  WHERE s.customer_id IN (SELECT customer_id FROM canonical)
),
scored AS (
  SELECT
    *,
    COALESCE(churn_model, 1 - EXP(-days_since_seen / @churn_rule_days)) AS churn_risk_score,
    COALESCE(
      lead_model,
      1 - EXP(-(@lead_rule_page_view_weight * page_views + @lead_rule_download_weight * content_downloads
        + @lead_rule_email_click_weight * email_clicks
        + CASE WHEN lead_created_at IS NOT NULL THEN @lead_rule_form_weight ELSE 0 END))
    ) AS lead_probability
  FROM features
)
SELECT
  customer_id::VARCHAR AS customer_id,
  email::VARCHAR AS email,
  first_name::VARCHAR AS first_name,
  last_name::VARCHAR AS last_name,
  CAST(COALESCE(lead_created_at, first_seen_at) AS DATE) AS acquisition_date,
  COALESCE(form_acquisition_source, first_source)::VARCHAR AS acquisition_source,
  first_seen_at::TIMESTAMP AS first_seen_at,
  last_seen_at::TIMESTAMP AS last_seen_at,
  total_purchases::BIGINT AS total_purchases,
  total_revenue::DOUBLE AS total_revenue,
  CAST(last_purchase_at AS DATE) AS last_purchase_date,
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
      THEN total_revenue / total_purchases * (total_purchases * 365.0 / tenure_days) * @clv_horizon_years
        * (1 - churn_risk_score)
      ELSE 0 END
  )::DOUBLE AS predicted_clv,
  churn_risk_score::DOUBLE AS churn_risk_score,
  lead_probability::DOUBLE AS lead_probability,
  ROUND(100 * LEAST(GREATEST(lead_probability, 0), 1), 2)::DOUBLE AS lead_score,
  CASE
    WHEN clv_model IS NOT NULL AND churn_model IS NOT NULL AND lead_model IS NOT NULL THEN 'model'
    WHEN clv_model IS NOT NULL OR churn_model IS NOT NULL OR lead_model IS NOT NULL THEN 'mixed'
    ELSE 'rule'
  END::VARCHAR AS score_source,
  CASE
    WHEN email_opens + email_clicks >= GREATEST(sms_clicks, push_opens, ad_clicks) THEN 'email'
    WHEN sms_clicks >= GREATEST(push_opens, ad_clicks) THEN 'sms'
    WHEN push_opens >= ad_clicks THEN 'push'
    ELSE 'ad'
  END::VARCHAR AS preferred_channel,
  CASE
    WHEN total_purchases > 0 AND days_since_seen > @churn_after_days THEN 'churned'
    WHEN total_purchases >= 2 THEN 'repeat_customer'
    WHEN total_purchases = 1 THEN 'customer'
    WHEN lead_created_at IS NOT NULL OR email IS NOT NULL THEN 'lead'
    ELSE 'visitor'
  END::VARCHAR AS lifecycle_stage,
  CASE
    WHEN total_purchases > 0 AND days_since_seen > @churn_after_days THEN 'lost'
    WHEN total_purchases > 0 AND days_since_seen > @at_risk_after_days THEN 'at_risk'
    WHEN total_purchases >= @champion_min_purchases AND days_since_seen <= @champion_seen_within_days THEN 'champion'
    WHEN total_purchases >= 2 THEN 'loyal'
    WHEN total_purchases = 1 THEN 'new'
    WHEN lead_created_at IS NOT NULL OR email IS NOT NULL THEN 'prospect'
    ELSE 'anonymous'
  END::VARCHAR AS customer_segment,
  merged_ids::BIGINT AS merged_ids
FROM scored
