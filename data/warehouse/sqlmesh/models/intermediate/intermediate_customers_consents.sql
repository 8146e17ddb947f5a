MODEL (
  name @{dataset}.intermediate_customers_consents,
  kind EMBEDDED,
  grain (customer_id),
  description 'One row per customer the build recomputes (intermediate_customers_scope) that ever gave or withdrew
consent: per channel, the latest consent_changed or unsubscribe of any of its logged ids (staging_events_payload),
latest in event time, ties broken by log position. Embedded: a subquery of intermediate_customers_summary.',
  column_descriptions @column_docs(intermediate_customers_consents)
);

WITH latest AS (
  SELECT i.canonical_customer_id AS customer_id, c.channel, c.granted
  FROM @{dataset}.staging_events_payload AS c
  JOIN @{dataset}.intermediate_customers_scope AS i ON c.customer_id = i.customer_id
  WHERE c.event_type IN ('consent_changed', 'unsubscribe')
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY i.canonical_customer_id, c.channel ORDER BY c.occurred_at DESC, c.log_position DESC, c.event_id DESC
  ) = 1
)
SELECT
  customer_id::VARCHAR AS customer_id,
  MAX(CASE WHEN channel = 'email' THEN granted END)::BOOLEAN AS consent_email,
  MAX(CASE WHEN channel = 'sms' THEN granted END)::BOOLEAN AS consent_sms,
  MAX(CASE WHEN channel = 'push' THEN granted END)::BOOLEAN AS consent_push,
  MAX(CASE WHEN channel = 'ad' THEN granted END)::BOOLEAN AS consent_ad
FROM latest
GROUP BY customer_id
