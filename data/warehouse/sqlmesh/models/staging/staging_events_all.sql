MODEL (
  name @{dataset}.staging_events_all,
  kind INCREMENTAL_BY_TIME_RANGE (time_column event_date),
  partitioned_by (event_date),
  clustered_by (customer_id),
  grain (event_id),
  audits (
    not_null(columns := (event_id, event_type, customer_id, occurred_at, event_date)),
    unique_values(columns := (event_id)),
    accepted_event_types
  ),
  description 'Every event once (deduplicated on event_id), typed, one partition per event day, with the visit''s
device and traffic tags (source, medium, campaign: the UTM tags of properties.context) and the whole payload.',
  column_descriptions @column_docs(staging_events_all)
);

-- The bounds are plain TIMESTAMPs like occurred_at: compared with @start_dt (a TIMESTAMPTZ) DuckDB casts every
-- row and cannot skip row groups by their min/max, so a one-day build scanned all of raw_events.
WITH window_rows AS (
  SELECT * FROM @{dataset}.raw_events
  WHERE occurred_at BETWEEN CAST(@start_ts AS TIMESTAMP) AND CAST(@end_ts AS TIMESTAMP)
),
-- At-least-once delivery (a Pub/Sub subscription) can write an event twice; only those ids pay for the
-- window that keeps one copy, the others pass straight through. Candidates are found by grouping a 64-bit
-- hash of event_id (cheaper than grouping the strings); the window then compares the ids themselves, so a
-- hash collision between two different ids keeps both.
duplicate_hashes AS (
  SELECT @fingerprint(event_id) AS h FROM window_rows WHERE event_id IS NOT NULL GROUP BY 1 HAVING COUNT(*) > 1
),
deduplicated AS (
  SELECT * FROM window_rows
  WHERE @fingerprint(event_id) NOT IN (SELECT h FROM duplicate_hashes)
  UNION ALL
  SELECT * FROM window_rows
  WHERE @fingerprint(event_id) IN (SELECT h FROM duplicate_hashes)
  QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY recorded_at, log_position, loaded_at) = 1
)
SELECT
  event_id::VARCHAR AS event_id,
  event_type::VARCHAR AS event_type,
  customer_id::VARCHAR AS customer_id,
  occurred_at::TIMESTAMP AS occurred_at,
  CAST(occurred_at AS DATE) AS event_date,
  recorded_at::TIMESTAMP AS recorded_at,
  source::VARCHAR AS event_source,
  causation_id::VARCHAR AS causation_id,
  campaign_id::VARCHAR AS campaign_id,
  creative_id::VARCHAR AS creative_id,
  anonymous_id::VARCHAR AS anonymous_id,
  session_id::VARCHAR AS session_id,
  url::VARCHAR AS url,
  amount::DOUBLE AS amount,
  cost::DOUBLE AS cost,
  channel::VARCHAR AS channel,
  score_model::VARCHAR AS score_model,
  score::DOUBLE AS score,
  device_type::VARCHAR AS device_type,
  traffic_source::VARCHAR AS source,
  traffic_medium::VARCHAR AS medium,
  traffic_campaign::VARCHAR AS campaign,
  @as_json(properties) AS event_properties
FROM deduplicated
