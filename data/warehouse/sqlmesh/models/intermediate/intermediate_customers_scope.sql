MODEL (
  name @{dataset}.intermediate_customers_scope,
  kind EMBEDDED,
  grain (customer_id),
  description 'The customers a build recomputes, as their logged ids: every id of a customer whose ids had events,
a form, a consent or score event in the interval, or whose identity component was recomputed then (an id joining or
leaving it, a new canonical id; intermediate_identity''s built_through). Every customer on a first build, or when a
restated day rebuilds the per-customer models from their first day. Embedded: the per-customer models read it
with the interval of intermediate_customers_summary, which they feed.',
  column_descriptions @column_docs(intermediate_customers_scope)
);

WITH identity AS (
  SELECT customer_id, canonical_customer_id, component_size, built_through FROM @{dataset}.intermediate_identity
),
touched_ids AS (
  SELECT customer_id FROM identity WHERE built_through >= @start_ds
  UNION ALL
  SELECT customer_id FROM @{dataset}.intermediate_ids_activity WHERE built_through >= @start_ds
  UNION ALL
  SELECT customer_id FROM @{dataset}.staging_customers_profiles WHERE built_through >= @start_ds
  UNION ALL
  SELECT customer_id FROM @{dataset}.staging_events_payload WHERE event_date BETWEEN @start_ds AND @end_ds
),
touched AS (
  SELECT i.canonical_customer_id FROM touched_ids AS t JOIN identity AS i ON t.customer_id = i.customer_id
)
-- identity resolution maps every logged id, so this holds every id of the touched customers
SELECT
  customer_id::VARCHAR AS customer_id,
  canonical_customer_id::VARCHAR AS canonical_customer_id,
  component_size::BIGINT AS component_size
FROM identity
WHERE canonical_customer_id IN (SELECT canonical_customer_id FROM touched)
