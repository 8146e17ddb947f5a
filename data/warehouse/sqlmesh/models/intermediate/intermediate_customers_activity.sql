MODEL (
  name @{dataset}.intermediate_customers_activity,
  kind EMBEDDED,
  grain (customer_id),
  description 'One row per customer the build recomputes (intermediate_customers_scope): the activity of all its
logged ids added up (intermediate_ids_activity), and the channel of its latest inbound engagement. Embedded: a
subquery of intermediate_customers_summary.',
  column_descriptions @column_docs(intermediate_customers_activity)
);

-- the scope holds every logged id of its customers, so the inner join keeps every id's row
WITH per_id AS (
  SELECT i.canonical_customer_id, i.component_size, a.*
  FROM @{dataset}.intermediate_ids_activity AS a
  JOIN @{dataset}.intermediate_customers_scope AS i ON a.customer_id = i.customer_id
),
totals AS (
  SELECT
    canonical_customer_id AS customer_id,
    MIN(first_seen_at) AS first_seen_at,
    MAX(last_seen_at) AS last_seen_at,
    MIN_BY(first_source, first_seen_at) AS first_source,
    SUM(purchases) AS total_purchases,
    SUM(revenue) AS total_revenue,
    MAX(last_purchase_at) AS last_purchase_at,
    SUM(events_total) AS events_total,
    SUM(page_views) AS page_views,
    SUM(downloads) AS content_downloads,
    SUM(email_opens) AS email_opens,
    SUM(email_clicks) AS email_clicks,
    SUM(sms_clicks) AS sms_clicks,
    SUM(push_opens) AS push_opens,
    SUM(ad_clicks) AS ad_clicks,
    SUM(offers_received) AS offers_received,
    SUM(support_tickets) AS support_tickets,
    MAX(component_size) AS merged_ids
  FROM per_id
  GROUP BY canonical_customer_id
),
-- Each id's latest engagement is in intermediate_ids_activity (ties broken by log position there); across a
-- customer's ids the latest in event time wins, then the latest in the log.
latest_engagement AS (
  SELECT canonical_customer_id AS customer_id, last_channel
  FROM per_id
  WHERE last_engaged_at IS NOT NULL
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY canonical_customer_id ORDER BY last_engaged_at DESC, engaged_position DESC, engaged_event_id DESC
  ) = 1
)
SELECT
  t.customer_id::VARCHAR AS customer_id,
  t.first_seen_at::TIMESTAMP AS first_seen_at,
  t.last_seen_at::TIMESTAMP AS last_seen_at,
  t.first_source::VARCHAR AS first_source,
  t.total_purchases::BIGINT AS total_purchases,
  t.total_revenue::DOUBLE AS total_revenue,
  t.last_purchase_at::TIMESTAMP AS last_purchase_at,
  t.events_total::BIGINT AS events_total,
  t.page_views::BIGINT AS page_views,
  t.content_downloads::BIGINT AS content_downloads,
  t.email_opens::BIGINT AS email_opens,
  t.email_clicks::BIGINT AS email_clicks,
  t.sms_clicks::BIGINT AS sms_clicks,
  t.push_opens::BIGINT AS push_opens,
  t.ad_clicks::BIGINT AS ad_clicks,
  t.offers_received::BIGINT AS offers_received,
  t.support_tickets::BIGINT AS support_tickets,
  e.last_channel::VARCHAR AS last_channel,
  t.merged_ids::BIGINT AS merged_ids
FROM totals AS t
LEFT JOIN latest_engagement AS e ON e.customer_id = t.customer_id
