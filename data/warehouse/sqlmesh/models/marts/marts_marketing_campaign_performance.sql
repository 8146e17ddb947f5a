MODEL (
  name @{dataset}.marts_marketing_campaign_performance,
  kind INCREMENTAL_BY_TIME_RANGE (time_column event_date),
  partitioned_by (event_date),
  clustered_by (campaign_id),
  grain (event_date, campaign_id),
  audits (
    not_null(columns := (event_date, campaign_id)),
    unique_combination_of_columns(columns := (event_date, campaign_id))
  ),
  description 'Campaign results per day. Delivery (impressions, sends, clicks, spend) is counted on the day it
happened; conversions and revenue are credited to the campaigns that touched the buyer within
attribution_window_days before the purchase, on the purchase day, by last touch and by linear attribution.
Name, channel and dates come from the campaign''s latest campaign_updated event (staging_campaigns).
A touch is a campaign-tagged impression, send, open or click; identity resolution links a buyer''s ids.',
  column_descriptions @column_docs(marts_marketing_campaign_performance)
);

WITH campaigns AS (
  SELECT campaign_id, campaign_name, channel, start_date, end_date FROM @{dataset}.staging_campaigns
),
ids AS (
  SELECT customer_id, canonical_customer_id FROM @{dataset}.intermediate_identity
),
delivery AS (
  SELECT
    event_date,
    campaign_id,
    SUM(CASE WHEN event_type = 'ad_impression' THEN 1 ELSE 0 END) AS impressions,
    SUM(CASE WHEN event_type IN ('email_sent', 'sms_sent', 'push_sent', 'offer_sent') THEN 1 ELSE 0 END) AS sends,
    SUM(CASE WHEN event_type IN ('ad_click', 'email_click', 'sms_click') THEN 1 ELSE 0 END) AS clicks,
    SUM(COALESCE(cost, 0)) AS spend,
    -- the channel the day's delivery went out on, when it was one (an undeclared campaign's channel)
    CASE WHEN COUNT(DISTINCT channel) = 1 THEN MIN(channel) WHEN COUNT(DISTINCT channel) > 1 THEN 'mixed' END AS delivery_channel,
    SUM(CASE WHEN event_type IN ('ad_impression', 'ad_click', 'email_sent', 'sms_sent', 'push_sent', 'offer_sent',
      'email_open', 'email_click', 'sms_click', 'push_open') THEN 1 ELSE 0 END) AS touches
  FROM @{dataset}.staging_events_all
  WHERE event_date BETWEEN @start_ds AND @end_ds AND campaign_id IS NOT NULL AND event_type <> 'campaign_updated'
  GROUP BY event_date, campaign_id
),
purchases AS (
  SELECT e.event_id, COALESCE(i.canonical_customer_id, e.customer_id) AS customer_id, e.occurred_at, e.event_date, e.amount
  FROM @{dataset}.staging_events_all AS e
  LEFT JOIN ids AS i ON e.customer_id = i.customer_id
  WHERE e.event_type = 'purchase' AND e.event_date BETWEEN @start_ds AND @end_ds
),
touches AS (
  SELECT e.event_id, COALESCE(i.canonical_customer_id, e.customer_id) AS customer_id, e.occurred_at, e.campaign_id
  FROM @{dataset}.staging_events_all AS e
  LEFT JOIN ids AS i ON e.customer_id = i.customer_id
  WHERE e.campaign_id IS NOT NULL
    AND e.event_type IN ('ad_impression', 'ad_click', 'email_sent', 'sms_sent', 'push_sent', 'offer_sent',
      'email_open', 'email_click', 'sms_click', 'push_open')
    AND e.event_date BETWEEN CAST(@start_ds AS DATE) - INTERVAL (@attribution_window_days) DAY AND @end_ds
),
paths AS (
  SELECT
    p.event_id AS purchase_id,
    p.event_date,
    p.amount,
    t.event_id AS touch_id,
    t.campaign_id,
    ROW_NUMBER() OVER (PARTITION BY p.event_id ORDER BY t.occurred_at DESC, t.event_id DESC) AS recency_rank,
    COUNT(*) OVER (PARTITION BY p.event_id) AS path_length
  FROM purchases AS p
  JOIN touches AS t
    ON t.customer_id = p.customer_id
    AND t.occurred_at <= p.occurred_at
    AND t.occurred_at >= p.occurred_at - INTERVAL (@attribution_window_days) DAY
),
credit AS (
  SELECT
    event_date,
    campaign_id,
    SUM(CASE WHEN recency_rank = 1 THEN 1 ELSE 0 END) AS conversions,
    SUM(CASE WHEN recency_rank = 1 THEN COALESCE(amount, 0) ELSE 0 END) AS revenue,
    SUM(1.0 / path_length) AS linear_conversions,
    SUM(COALESCE(amount, 0) / path_length) AS linear_revenue,
    COUNT(DISTINCT touch_id) AS attributed_touches
  FROM paths
  GROUP BY event_date, campaign_id
)
SELECT
  COALESCE(d.event_date, c.event_date)::DATE AS event_date,
  COALESCE(d.campaign_id, c.campaign_id)::VARCHAR AS campaign_id,
  COALESCE(k.campaign_name, d.campaign_id, c.campaign_id)::VARCHAR AS campaign_name,
  COALESCE(k.channel, d.delivery_channel)::VARCHAR AS channel,
  k.start_date::DATE AS start_date,
  k.end_date::DATE AS end_date,
  COALESCE(d.impressions, 0)::BIGINT AS impressions,
  COALESCE(d.sends, 0)::BIGINT AS sends,
  COALESCE(d.clicks, 0)::BIGINT AS clicks,
  COALESCE(d.spend, 0)::DOUBLE AS spend,
  COALESCE(d.touches, 0)::BIGINT AS touches,
  COALESCE(c.conversions, 0)::BIGINT AS conversions,
  COALESCE(c.revenue, 0)::DOUBLE AS revenue,
  (COALESCE(c.revenue, 0) / NULLIF(d.spend, 0))::DOUBLE AS roas,
  COALESCE(c.linear_conversions, 0)::DOUBLE AS linear_conversions,
  COALESCE(c.linear_revenue, 0)::DOUBLE AS linear_revenue,
  COALESCE(c.attributed_touches, 0)::BIGINT AS attributed_touches
FROM delivery AS d
FULL OUTER JOIN credit AS c
  ON d.event_date = c.event_date AND d.campaign_id = c.campaign_id
LEFT JOIN campaigns AS k
  ON k.campaign_id = COALESCE(d.campaign_id, c.campaign_id)
