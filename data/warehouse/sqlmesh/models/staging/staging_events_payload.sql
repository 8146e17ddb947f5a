MODEL (
  name @{dataset}.staging_events_payload,
  kind INCREMENTAL_BY_TIME_RANGE (time_column event_date),
  partitioned_by (event_date),
  clustered_by (customer_id),
  grain (event_id, log_position),
  audits (
    not_null(columns := (event_id, event_type, customer_id, occurred_at, event_date))
  ),
  description 'The consent and score events with the payload fields customer_360 needs (granted, tier), one
partition per event day, so that customer_360 reads these few rows instead of scanning raw_events. Read
from raw_events with their log position (the tie-break of events at the same time); a redelivered copy is the
same event and changes no result.',
  column_descriptions @column_docs(staging_events_payload)
);

SELECT
  event_id::VARCHAR AS event_id,
  event_type::VARCHAR AS event_type,
  customer_id::VARCHAR AS customer_id,
  occurred_at::TIMESTAMP AS occurred_at,
  CAST(occurred_at AS DATE) AS event_date,
  COALESCE(log_position, -1)::BIGINT AS log_position,
  channel::VARCHAR AS channel,
  (CASE
    WHEN event_type = 'consent_changed' THEN COALESCE(json_extract_string(properties, '$.granted') = 'true', FALSE)
    ELSE FALSE
  END)::BOOLEAN AS granted,
  score_model::VARCHAR AS score_model,
  score::DOUBLE AS score,
  (CASE WHEN event_type = 'score_updated' THEN json_extract_string(properties, '$.tier') END)::VARCHAR AS score_tier
FROM @{dataset}.raw_events
WHERE occurred_at BETWEEN CAST(@start_ts AS TIMESTAMP) AND CAST(@end_ts AS TIMESTAMP)
  AND event_type IN ('consent_changed', 'unsubscribe', 'score_updated')
