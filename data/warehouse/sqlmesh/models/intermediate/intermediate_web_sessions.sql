MODEL (
  name @{dataset}.intermediate_web_sessions,
  kind INCREMENTAL_BY_TIME_RANGE (time_column session_date),
  partitioned_by (session_date),
  clustered_by (customer_id),
  grain (session_id),
  audits (
    not_null(columns := (session_id, customer_id, session_start, session_date)),
    unique_values(columns := (session_id))
  ),
  description 'Web sessions: page views of one customer with no gap longer than session_gap_seconds (30 minutes). A session that spans
midnight (UTC) is split at the day boundary, so that each day is computed from its own partition.',
  column_descriptions @column_docs(intermediate_web_sessions)
);

WITH views AS (
  SELECT customer_id, anonymous_id, occurred_at, url, event_date
  FROM @{dataset}.staging_events_all
  WHERE event_type = 'page_view' AND event_date BETWEEN @start_ds AND @end_ds
),
marked AS (
  SELECT
    *,
    CASE
      WHEN LAG(occurred_at) OVER w IS NULL THEN 1
      WHEN DATE_DIFF('second', LAG(occurred_at) OVER w, occurred_at) > @session_gap_seconds THEN 1
      ELSE 0
    END AS is_new_session
  FROM views
  WINDOW w AS (PARTITION BY customer_id, event_date ORDER BY occurred_at)
),
numbered AS (
  SELECT
    *,
    SUM(is_new_session) OVER (
      PARTITION BY customer_id, event_date ORDER BY occurred_at ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS session_number
  FROM marked
)
SELECT
  MD5(customer_id || '|' || CAST(MIN(occurred_at) AS VARCHAR))::VARCHAR AS session_id,
  customer_id::VARCHAR AS customer_id,
  MIN(anonymous_id)::VARCHAR AS anonymous_id,
  MIN(occurred_at)::TIMESTAMP AS session_start,
  MAX(occurred_at)::TIMESTAMP AS session_end,
  COUNT(*)::BIGINT AS page_views,
  DATE_DIFF('second', MIN(occurred_at), MAX(occurred_at))::BIGINT AS duration_s,
  ARG_MIN(url, occurred_at)::VARCHAR AS landing_url,
  event_date::DATE AS session_date
FROM numbered
GROUP BY customer_id, event_date, session_number
