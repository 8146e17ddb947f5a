MODEL (
  name @{dataset}.intermediate_ids_anonymous_ids,
  kind INCREMENTAL_BY_UNIQUE_KEY (unique_key (customer_id, anonymous_id)),
  clustered_by (customer_id),
  grain (customer_id, anonymous_id),
  audits (
    not_null(columns := (customer_id, anonymous_id))
  ),
  description 'Every (logged id, anonymous web or app id) pair seen: the anonymous links of identity
resolution. Each build adds the pairs of the new days only (a pair seen again is upserted, so reprocessing a
day changes nothing but built_through).',
  column_descriptions @column_docs(intermediate_ids_anonymous_ids)
);

SELECT DISTINCT
  customer_id::VARCHAR AS customer_id,
  anonymous_id::VARCHAR AS anonymous_id,
  CAST(@end_ds AS DATE) AS built_through
FROM @{dataset}.staging_events_all
WHERE event_date BETWEEN @start_ds AND @end_ds AND anonymous_id IS NOT NULL
