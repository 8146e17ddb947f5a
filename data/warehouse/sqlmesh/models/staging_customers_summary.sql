MODEL (
  name @{dataset}.staging_customers_summary,
  kind INCREMENTAL_BY_UNIQUE_KEY (unique_key customer_id),
  clustered_by (customer_id),
  grain (customer_id),
  audits (
    not_null(columns := (customer_id, first_seen_at)),
    unique_values(columns := (customer_id)),
    accepted_values(column := preferred_channel, is_in := ('email', 'sms', 'push', 'ad'))
  ),
  description 'One row per resolved customer: every column of marts_marketing_customer_360 that does not depend
on the build date, and the model scores that the date-dependent ones fall back from. Each build recomputes only
the customers the new days touched, from the per-id tables: a customer whose ids had events, a form, a consent or
score event in the new days, or whose identity component was recomputed (staging_customers_identity''s
built_through). A customer merged into another keeps its old row here; customer_360 shows canonical ids only.
The recomputed rows are complete (not merged with the old row), so a restated day, which rebuilds this model
from its first day, gives the same rows.',
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
    lead_score = 'Latest lead score, else 1 - exp(-(0.02 page views + 0.3 downloads + 0.2 email clicks + 0.5 if a form was filled in)).',
    score_source = 'model when all three scores come from score_updated events, mixed when some do, rule otherwise.',
    preferred_channel = 'Channel with the most engagement (opens and clicks); email when none.',
    merged_ids = 'How many logged ids identity resolution merged into this customer.',
    lead_created_at = 'Time of the first lead event of any of the customer''s ids (null: never filled in a form).',
    clv_model = 'Latest clv score_updated score, null without one.',
    churn_model = 'Latest churn score_updated score, null without one.',
    built_through = 'Last day of the interval that last wrote the row.'
  )
);

WITH identity AS (
  SELECT customer_id, canonical_customer_id, component_size, built_through FROM @{dataset}.staging_customers_identity
),
-- The customers the new days touched: their ids had activity, a form, a consent or score event, or their
-- identity component was recomputed (an id joining or leaving it, a new canonical id).
touched_ids AS (
  SELECT customer_id FROM identity WHERE built_through >= @start_ds
  UNION
  SELECT customer_id FROM @{dataset}.staging_customers_activity WHERE built_through >= @start_ds
  UNION
  SELECT customer_id FROM @{dataset}.staging_customers_profiles WHERE built_through >= @start_ds
  UNION
  SELECT customer_id FROM @{dataset}.staging_events_payload WHERE event_date BETWEEN @start_ds AND @end_ds
),
touched AS (
  SELECT DISTINCT COALESCE(i.canonical_customer_id, t.customer_id) AS customer_id
  FROM touched_ids AS t
  LEFT JOIN identity AS i ON t.customer_id = i.customer_id
),
-- Every id of the touched customers (identity resolution maps every logged id, so the inner joins below keep
-- every row of theirs).
ids AS (
  SELECT customer_id, canonical_customer_id, component_size
  FROM identity
  WHERE canonical_customer_id IN (SELECT customer_id FROM touched)
),
-- Per logged id, kept up to date incrementally (staging_customers_activity).
per_id AS (
  SELECT
    *,
    email_opens + email_clicks AS email_engagement,
    sms_clicks AS sms_engagement,
    push_opens AS push_engagement,
    ad_clicks AS ad_engagement
  FROM @{dataset}.staging_customers_activity
),
per_customer AS (
  SELECT
    COALESCE(i.canonical_customer_id, p.customer_id) AS customer_id,
    MIN(p.first_seen_at) AS first_seen_at,
    MAX(p.last_seen_at) AS last_seen_at,
    MIN_BY(p.first_source, p.first_seen_at) AS first_source,
    SUM(p.purchases) AS total_purchases,
    SUM(p.revenue) AS total_revenue,
    MAX(p.last_purchase_at) AS last_purchase_at,
    SUM(p.events_total) AS events_total,
    SUM(p.page_views) AS page_views,
    SUM(p.downloads) AS downloads,
    SUM(p.email_opens) AS email_opens,
    SUM(p.email_clicks) AS email_clicks,
    SUM(p.sms_clicks) AS sms_clicks,
    SUM(p.push_opens) AS push_opens,
    SUM(p.ad_clicks) AS ad_clicks,
    SUM(p.offers_received) AS offers_received,
    SUM(p.support_tickets) AS support_tickets,
    SUM(p.email_engagement) AS email_engagement,
    SUM(p.sms_engagement) AS sms_engagement,
    SUM(p.push_engagement) AS push_engagement,
    SUM(p.ad_engagement) AS ad_engagement,
    MAX(COALESCE(i.component_size, 1)) AS merged_ids
  FROM per_id AS p
  JOIN ids AS i ON p.customer_id = i.customer_id
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
  JOIN ids AS i ON p.customer_id = i.customer_id
  GROUP BY COALESCE(i.canonical_customer_id, p.customer_id)
),
-- The latest inbound engagement of each logged id is in staging_customers_activity (ties broken by log
-- position there); across a customer's ids the latest in event time wins, then the latest in the log.
id_engagement AS (
  SELECT customer_id, last_engaged_at AS engaged_at, engaged_position, engaged_event_id, last_channel
  FROM per_id
  WHERE last_engaged_at IS NOT NULL
),
engagement AS (
  SELECT COALESCE(i.canonical_customer_id, e.customer_id) AS customer_id, e.last_channel
  FROM id_engagement AS e
  JOIN ids AS i ON e.customer_id = i.customer_id
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY COALESCE(i.canonical_customer_id, e.customer_id)
    ORDER BY e.engaged_at DESC, e.engaged_position DESC, e.engaged_event_id DESC
  ) = 1
),
-- Consent and scores live in the JSON payload (granted, tier): staging_events_payload keeps these few events.
payload_events AS (
  SELECT
    COALESCE(i.canonical_customer_id, r.customer_id) AS customer_id,
    r.event_type,
    r.occurred_at,
    r.log_position,
    r.event_id,
    r.channel,
    r.score_model,
    r.score,
    r.granted,
    r.score_tier
  FROM @{dataset}.staging_events_payload AS r
  JOIN ids AS i ON r.customer_id = i.customer_id
),
consents AS (
  SELECT customer_id, channel, granted
  FROM payload_events
  WHERE event_type IN ('consent_changed', 'unsubscribe')
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY customer_id, channel ORDER BY occurred_at DESC, log_position DESC, event_id DESC
  ) = 1
),
consent AS (
  SELECT
    customer_id,
    MAX(CASE WHEN channel = 'email' THEN granted END) AS consent_email,
    MAX(CASE WHEN channel = 'sms' THEN granted END) AS consent_sms,
    MAX(CASE WHEN channel = 'push' THEN granted END) AS consent_push,
    MAX(CASE WHEN channel = 'ad' THEN granted END) AS consent_ad
  FROM consents
  GROUP BY customer_id
),
scores AS (
  SELECT customer_id, score_model, score, score_tier
  FROM payload_events
  WHERE event_type = 'score_updated'
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY customer_id, score_model ORDER BY occurred_at DESC, log_position DESC, event_id DESC
  ) = 1
),
latest AS (
  SELECT
    customer_id,
    MAX(CASE WHEN score_model = 'clv' THEN score END) AS clv,
    MAX(CASE WHEN score_model = 'churn' THEN score END) AS churn,
    MAX(CASE WHEN score_model = 'lead' THEN score END) AS lead,
    MAX(CASE WHEN score_model = 'lead' THEN score_tier END) AS lead_tier
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
    l.clv AS clv_model,
    l.churn AS churn_model,
    l.lead AS lead_model,
    l.lead_tier AS lead_model_tier,
    g.last_channel,
    k.consent_email,
    k.consent_sms,
    k.consent_push,
    k.consent_ad
  FROM per_customer AS c
  LEFT JOIN profiles AS pr ON pr.customer_id = c.customer_id
  LEFT JOIN latest AS l ON l.customer_id = c.customer_id
  LEFT JOIN engagement AS g ON g.customer_id = c.customer_id
  LEFT JOIN consent AS k ON k.customer_id = c.customer_id
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
  CAST(last_purchase_at AS DATE) AS last_purchase_date,
  page_views::BIGINT AS page_views,
  events_total::BIGINT AS events_total,
  downloads::BIGINT AS content_downloads,
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
    lead_model,
    1 - EXP(-(0.02 * page_views + 0.3 * downloads + 0.2 * email_clicks + CASE WHEN lead_created_at IS NOT NULL THEN 0.5 ELSE 0 END))
  )::DOUBLE AS lead_score,
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
  merged_ids::BIGINT AS merged_ids,
  lead_created_at::TIMESTAMP AS lead_created_at,
  clv_model::DOUBLE AS clv_model,
  churn_model::DOUBLE AS churn_model,
  CAST(@end_ds AS DATE) AS built_through
FROM features
