MODEL (
  name @{dataset}.intermediate_customers_scores,
  kind EMBEDDED,
  grain (customer_id),
  description 'One row per customer the build recomputes (intermediate_customers_scope) that the scoring agent
scored: per model (lead, churn, clv), the latest score_updated event of any of its logged ids
(staging_events_payload), latest in event time, ties broken by log position. Embedded: a subquery of
intermediate_customers_summary.',
  column_descriptions @column_docs(intermediate_customers_scores)
);

WITH latest AS (
  SELECT i.canonical_customer_id AS customer_id, s.score_model, s.score, s.score_tier
  FROM @{dataset}.staging_events_payload AS s
  JOIN @{dataset}.intermediate_customers_scope AS i ON s.customer_id = i.customer_id
  WHERE s.event_type = 'score_updated'
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY i.canonical_customer_id, s.score_model ORDER BY s.occurred_at DESC, s.log_position DESC, s.event_id DESC
  ) = 1
)
SELECT
  customer_id::VARCHAR AS customer_id,
  MAX(CASE WHEN score_model = 'lead' THEN score END)::DOUBLE AS lead_model,
  MAX(CASE WHEN score_model = 'lead' THEN score_tier END)::VARCHAR AS lead_model_tier,
  MAX(CASE WHEN score_model = 'churn' THEN score END)::DOUBLE AS churn_model,
  MAX(CASE WHEN score_model = 'clv' THEN score END)::DOUBLE AS clv_model
FROM latest
GROUP BY customer_id
