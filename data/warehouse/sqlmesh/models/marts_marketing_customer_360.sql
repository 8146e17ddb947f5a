MODEL (
  name @{dataset}.marts_marketing_customer_360,
  kind FULL,
  grain (customer_id),
  audits (
    not_null(columns := (customer_id, lifecycle_stage, customer_segment, first_seen_at)),
    unique_values(columns := (customer_id)),
    accepted_values(column := lifecycle_stage, is_in := ('visitor', 'lead', 'customer', 'repeat_customer', 'churned')),
    accepted_values(column := customer_segment, is_in := ('anonymous', 'prospect', 'new', 'loyal', 'champion', 'at_risk', 'lost')),
    accepted_values(column := preferred_channel, is_in := ('email', 'sms', 'push', 'ad')),
    referential_integrity(column := customer_id, parent := @{dataset}.staging_customers_identity, parent_column := canonical_customer_id)
  ),
  description 'The unified customer profile: one row per resolved customer (identity applied), as of the
end of the build interval. Scores come from the latest score_updated event of each model when the scoring
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

WITH ids AS (
  SELECT customer_id, canonical_customer_id, component_size FROM @{dataset}.staging_customers_identity
),
per_id AS (
  SELECT
    customer_id,
    MIN(occurred_at) AS first_seen_at,
    MAX(occurred_at) AS last_seen_at,
    MIN_BY(source, occurred_at) AS first_source,
    SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases,
    SUM(CASE WHEN event_type = 'purchase' THEN amount ELSE 0 END) AS revenue,
    MAX(CASE WHEN event_type = 'purchase' THEN event_date END) AS last_purchase_date,
    SUM(CASE WHEN event_type = 'page_view' THEN 1 ELSE 0 END) AS page_views,
    SUM(CASE WHEN event_type = 'content_download' THEN 1 ELSE 0 END) AS downloads,
    SUM(CASE WHEN event_type = 'email_click' THEN 1 ELSE 0 END) AS email_clicks,
    SUM(CASE WHEN event_type IN ('email_open', 'email_click') THEN 1 ELSE 0 END) AS email_engagement,
    SUM(CASE WHEN event_type = 'sms_click' THEN 1 ELSE 0 END) AS sms_engagement,
    SUM(CASE WHEN event_type = 'push_open' THEN 1 ELSE 0 END) AS push_engagement,
    SUM(CASE WHEN event_type = 'ad_click' THEN 1 ELSE 0 END) AS ad_engagement
  FROM @{dataset}.staging_events_all
  GROUP BY customer_id
),
per_customer AS (
  SELECT
    COALESCE(i.canonical_customer_id, p.customer_id) AS customer_id,
    MIN(p.first_seen_at) AS first_seen_at,
    MAX(p.last_seen_at) AS last_seen_at,
    MIN_BY(p.first_source, p.first_seen_at) AS first_source,
    SUM(p.purchases) AS total_purchases,
    SUM(p.revenue) AS total_revenue,
    MAX(p.last_purchase_date) AS last_purchase_date,
    SUM(p.page_views) AS page_views,
    SUM(p.downloads) AS downloads,
    SUM(p.email_clicks) AS email_clicks,
    SUM(p.email_engagement) AS email_engagement,
    SUM(p.sms_engagement) AS sms_engagement,
    SUM(p.push_engagement) AS push_engagement,
    SUM(p.ad_engagement) AS ad_engagement,
    MAX(COALESCE(i.component_size, 1)) AS merged_ids
  FROM per_id AS p
  LEFT JOIN ids AS i ON p.customer_id = i.customer_id
  GROUP BY COALESCE(i.canonical_customer_id, p.customer_id)
),
profiles AS (
  SELECT
    COALESCE(i.canonical_customer_id, p.customer_id) AS customer_id,
    MAX_BY(p.email, CASE WHEN p.email IS NOT NULL THEN p.created_at END) AS email,
    MAX_BY(p.first_name, CASE WHEN p.first_name IS NOT NULL THEN p.created_at END) AS first_name,
    MAX_BY(p.last_name, CASE WHEN p.last_name IS NOT NULL THEN p.created_at END) AS last_name,
    MIN_BY(p.acquisition_source, p.created_at) AS acquisition_source,
    MIN(p.created_at) AS created_at
  FROM @{dataset}.staging_customers_profiles AS p
  LEFT JOIN ids AS i ON p.customer_id = i.customer_id
  GROUP BY COALESCE(i.canonical_customer_id, p.customer_id)
),
scores AS (
  SELECT
    COALESCE(i.canonical_customer_id, s.customer_id) AS customer_id,
    s.score_model,
    s.score
  FROM @{dataset}.staging_events_all AS s
  LEFT JOIN ids AS i ON s.customer_id = i.customer_id
  WHERE s.event_type = 'score_updated'
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY COALESCE(i.canonical_customer_id, s.customer_id), s.score_model ORDER BY s.occurred_at DESC, s.event_id DESC
  ) = 1
),
latest AS (
  SELECT
    customer_id,
    MAX(CASE WHEN score_model = 'clv' THEN score END) AS clv,
    MAX(CASE WHEN score_model = 'churn' THEN score END) AS churn,
    MAX(CASE WHEN score_model = 'lead' THEN score END) AS lead
  FROM scores
  GROUP BY customer_id
),
features AS (
  SELECT
    c.*,
    pr.email,
    pr.first_name,
    pr.last_name,
    pr.created_at AS lead_created_at,
    COALESCE(pr.acquisition_source, c.first_source) AS acquisition_source,
    DATE_DIFF('day', CAST(c.last_seen_at AS DATE), CAST(@execution_ds AS DATE)) - 1 AS days_since_seen,
    GREATEST(DATE_DIFF('day', CAST(c.first_seen_at AS DATE), CAST(@execution_ds AS DATE)) - 1, 90) AS tenure_days,
    l.clv AS clv_model,
    l.churn AS churn_model,
    l.lead AS lead_model
  FROM per_customer AS c
  LEFT JOIN profiles AS pr ON pr.customer_id = c.customer_id
  LEFT JOIN latest AS l ON l.customer_id = c.customer_id
),
scored AS (
  SELECT
    *,
    COALESCE(churn_model, 1 - EXP(-days_since_seen / 90.0)) AS churn_risk_score,
    COALESCE(
      lead_model,
      1 - EXP(-(0.02 * page_views + 0.3 * downloads + 0.2 * email_clicks + CASE WHEN lead_created_at IS NOT NULL THEN 0.5 ELSE 0 END))
    ) AS lead_score
  FROM features
)
SELECT
  customer_id::VARCHAR AS customer_id,
  email::VARCHAR AS email,
  first_name::VARCHAR AS first_name,
  last_name::VARCHAR AS last_name,
  CAST(COALESCE(lead_created_at, first_seen_at) AS DATE) AS acquisition_date,
  acquisition_source::VARCHAR AS acquisition_source,
  first_seen_at::TIMESTAMP AS first_seen_at,
  last_seen_at::TIMESTAMP AS last_seen_at,
  total_purchases::BIGINT AS total_purchases,
  total_revenue::DOUBLE AS total_revenue,
  last_purchase_date::DATE AS last_purchase_date,
  page_views::BIGINT AS page_views,
  COALESCE(
    clv_model,
    CASE WHEN total_purchases > 0
      THEN total_revenue / total_purchases * (total_purchases * 365.0 / tenure_days) * 3 * (1 - churn_risk_score)
      ELSE 0 END
  )::DOUBLE AS predicted_clv,
  churn_risk_score::DOUBLE AS churn_risk_score,
  lead_score::DOUBLE AS lead_score,
  CASE
    WHEN clv_model IS NOT NULL AND churn_model IS NOT NULL AND lead_model IS NOT NULL THEN 'model'
    WHEN clv_model IS NOT NULL OR churn_model IS NOT NULL OR lead_model IS NOT NULL THEN 'mixed'
    ELSE 'rule'
  END::VARCHAR AS score_source,
  CASE
    WHEN GREATEST(email_engagement, sms_engagement, push_engagement, ad_engagement) = 0 THEN 'email'
    WHEN email_engagement >= GREATEST(sms_engagement, push_engagement, ad_engagement) THEN 'email'
    WHEN sms_engagement >= GREATEST(push_engagement, ad_engagement) THEN 'sms'
    WHEN push_engagement >= ad_engagement THEN 'push'
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
    WHEN total_purchases > 0 AND days_since_seen > 90 THEN 'at_risk'
    WHEN total_purchases >= 3 AND days_since_seen <= 30 THEN 'champion'
    WHEN total_purchases >= 2 THEN 'loyal'
    WHEN total_purchases = 1 THEN 'new'
    WHEN lead_created_at IS NOT NULL OR email IS NOT NULL THEN 'prospect'
    ELSE 'anonymous'
  END::VARCHAR AS customer_segment,
  merged_ids::BIGINT AS merged_ids
FROM scored
