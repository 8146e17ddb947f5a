MODEL (
  name @{dataset}.intermediate_ids_activity,
  kind INCREMENTAL_BY_UNIQUE_KEY (unique_key customer_id),
  clustered_by (customer_id),
  grain (customer_id),
  audits (
    not_null(columns := (customer_id, first_seen_at, last_seen_at, events_total)),
    unique_values(columns := (customer_id))
  ),
  description 'One row per logged id (before identity resolution): its activity so far, the input of
customer_360. Each build aggregates only the new days of staging_events_all and merges them with the row the
id already has (@this_model): counts and revenue add up, first and latest times take the earlier and the
later. A row is merged only when it was written for days before the interval (built_through); restating a
day (late events) makes SQLMesh recompute this model from its first day, and those rows are then replaced,
not added to, so a day is never counted twice.',
  column_descriptions @column_docs(intermediate_ids_activity)
);

WITH interval_ids AS (
  SELECT
    customer_id,
    MIN(occurred_at) AS first_seen_at,
    MAX(occurred_at) AS last_seen_at,
    MIN_BY(event_source, occurred_at) AS first_source,
    SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases,
    SUM(CASE WHEN event_type = 'purchase' THEN amount ELSE 0 END) AS revenue,
    MAX(CASE WHEN event_type = 'purchase' THEN occurred_at END) AS last_purchase_at,
    MAX(CASE WHEN event_type IN ('email_open', 'email_click', 'sms_click', 'push_open', 'ad_click', 'page_view', 'content_download') THEN occurred_at END) AS last_engaged_at,
    COUNT(*) AS events_total,
    SUM(CASE WHEN event_type = 'page_view' THEN 1 ELSE 0 END) AS page_views,
    SUM(CASE WHEN event_type = 'content_download' THEN 1 ELSE 0 END) AS downloads,
    SUM(CASE WHEN event_type = 'email_open' THEN 1 ELSE 0 END) AS email_opens,
    SUM(CASE WHEN event_type = 'email_click' THEN 1 ELSE 0 END) AS email_clicks,
    SUM(CASE WHEN event_type = 'sms_click' THEN 1 ELSE 0 END) AS sms_clicks,
    SUM(CASE WHEN event_type = 'push_open' THEN 1 ELSE 0 END) AS push_opens,
    SUM(CASE WHEN event_type = 'ad_click' THEN 1 ELSE 0 END) AS ad_clicks,
    SUM(CASE WHEN event_type = 'offer_sent' THEN 1 ELSE 0 END) AS offers_received,
    SUM(CASE WHEN event_type = 'support_ticket' THEN 1 ELSE 0 END) AS support_tickets
  FROM @{dataset}.staging_events_all
  WHERE event_date BETWEEN @start_ds AND @end_ds AND customer_id <> @broadcast_customer_id  -- campaigns and promotions are no customer's
  GROUP BY customer_id
),
-- The latest engagement of each id in the interval: among its engagement events at last_engaged_at, the one
-- latest in the log (raw_events keeps log_position; a redelivered copy is the same event).
interval_engagement AS (
  SELECT
    r.customer_id,
    COALESCE(r.log_position, -1) AS engaged_position,
    r.event_id AS engaged_event_id,
    CASE
      WHEN r.event_type IN ('email_open', 'email_click') THEN 'email'
      WHEN r.event_type = 'sms_click' THEN 'sms'
      WHEN r.event_type = 'push_open' THEN 'push'
      WHEN r.event_type = 'ad_click' THEN 'ad'
      ELSE 'web'
    END AS last_channel
  FROM @{dataset}.raw_events AS r
  JOIN interval_ids AS p ON r.customer_id = p.customer_id AND r.occurred_at = p.last_engaged_at
  WHERE r.occurred_at BETWEEN CAST(@start_ts AS TIMESTAMP) AND CAST(@end_ts AS TIMESTAMP)
    AND r.event_type IN ('email_open', 'email_click', 'sms_click', 'push_open', 'ad_click', 'page_view', 'content_download')
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY r.customer_id ORDER BY COALESCE(r.log_position, -1) DESC, r.event_id DESC
  ) = 1
),
fresh AS (
  SELECT n.*, e.engaged_position, e.engaged_event_id, e.last_channel
  FROM interval_ids AS n
  LEFT JOIN interval_engagement AS e ON e.customer_id = n.customer_id
),
-- The new interval wins the engagement when it is later, or at the same time later in the log.
merged AS (
  SELECT
    f.*,
    o.customer_id AS old_customer_id,
    o.first_seen_at AS old_first_seen_at,
    o.last_seen_at AS old_last_seen_at,
    o.first_source AS old_first_source,
    o.purchases AS old_purchases,
    o.revenue AS old_revenue,
    o.last_purchase_at AS old_last_purchase_at,
    o.events_total AS old_events_total,
    o.page_views AS old_page_views,
    o.downloads AS old_downloads,
    o.email_opens AS old_email_opens,
    o.email_clicks AS old_email_clicks,
    o.sms_clicks AS old_sms_clicks,
    o.push_opens AS old_push_opens,
    o.ad_clicks AS old_ad_clicks,
    o.offers_received AS old_offers_received,
    o.support_tickets AS old_support_tickets,
    o.last_engaged_at AS old_last_engaged_at,
    o.engaged_position AS old_engaged_position,
    o.engaged_event_id AS old_engaged_event_id,
    o.last_channel AS old_last_channel,
    (
      o.last_engaged_at IS NULL
      OR f.last_engaged_at > o.last_engaged_at
      OR (f.last_engaged_at = o.last_engaged_at AND (f.engaged_position > o.engaged_position
          OR (f.engaged_position = o.engaged_position AND f.engaged_event_id > o.engaged_event_id)))
    ) AS new_engagement_wins
  FROM fresh AS f
  LEFT JOIN (SELECT * FROM @this_model WHERE built_through < @start_ds) AS o ON o.customer_id = f.customer_id
)
SELECT
  customer_id::VARCHAR AS customer_id,
  LEAST(first_seen_at, COALESCE(old_first_seen_at, first_seen_at))::TIMESTAMP AS first_seen_at,
  GREATEST(last_seen_at, COALESCE(old_last_seen_at, last_seen_at))::TIMESTAMP AS last_seen_at,
  (CASE WHEN old_first_seen_at IS NULL OR first_seen_at < old_first_seen_at THEN first_source
   ELSE old_first_source END)::VARCHAR AS first_source,
  (purchases + COALESCE(old_purchases, 0))::BIGINT AS purchases,
  (revenue + COALESCE(old_revenue, 0))::DOUBLE AS revenue,
  (CASE WHEN old_last_purchase_at IS NULL OR last_purchase_at > old_last_purchase_at THEN last_purchase_at
   ELSE old_last_purchase_at END)::TIMESTAMP AS last_purchase_at,
  (events_total + COALESCE(old_events_total, 0))::BIGINT AS events_total,
  (page_views + COALESCE(old_page_views, 0))::BIGINT AS page_views,
  (downloads + COALESCE(old_downloads, 0))::BIGINT AS downloads,
  (email_opens + COALESCE(old_email_opens, 0))::BIGINT AS email_opens,
  (email_clicks + COALESCE(old_email_clicks, 0))::BIGINT AS email_clicks,
  (sms_clicks + COALESCE(old_sms_clicks, 0))::BIGINT AS sms_clicks,
  (push_opens + COALESCE(old_push_opens, 0))::BIGINT AS push_opens,
  (ad_clicks + COALESCE(old_ad_clicks, 0))::BIGINT AS ad_clicks,
  (offers_received + COALESCE(old_offers_received, 0))::BIGINT AS offers_received,
  (support_tickets + COALESCE(old_support_tickets, 0))::BIGINT AS support_tickets,
  (CASE WHEN last_engaged_at IS NOT NULL AND new_engagement_wins THEN last_engaged_at
   ELSE old_last_engaged_at END)::TIMESTAMP AS last_engaged_at,
  (CASE WHEN last_engaged_at IS NOT NULL AND new_engagement_wins THEN engaged_position
   ELSE old_engaged_position END)::BIGINT AS engaged_position,
  (CASE WHEN last_engaged_at IS NOT NULL AND new_engagement_wins THEN engaged_event_id
   ELSE old_engaged_event_id END)::VARCHAR AS engaged_event_id,
  (CASE WHEN last_engaged_at IS NOT NULL AND new_engagement_wins THEN last_channel
   ELSE old_last_channel END)::VARCHAR AS last_channel,
  CAST(@end_ds AS DATE) AS built_through
FROM merged
