MODEL (
  name @{dataset}.marts_sales_lead_scores,
  kind FULL,
  grain (customer_id),
  audits (
    not_null(columns := (customer_id, lead_probability, lead_score, lead_tier)),
    unique_values(columns := (customer_id)),
    accepted_values(column := lead_tier, is_in := ('High', 'Medium', 'Low')),
    accepted_range(column := lead_probability, min_v := 0, max_v := 1),
    accepted_range(column := lead_score, min_v := 0, max_v := 100),
    referential_integrity(column := customer_id, parent := @{dataset}.marts_marketing_customer_360, parent_column := customer_id)
  ),
  description 'Leads for sales: known customers (a form filled in) who have not bought yet, ranked by lead
score, with the engagement behind the score.',
  column_descriptions @column_docs(marts_sales_lead_scores)
);

SELECT
  customer_id::VARCHAR AS customer_id,
  email::VARCHAR AS email,
  first_name::VARCHAR AS first_name,
  last_name::VARCHAR AS last_name,
  LEAST(GREATEST(lead_probability, 0), 1)::DOUBLE AS lead_probability,
  lead_score::DOUBLE AS lead_score,
  CASE
    WHEN lead_model_tier IN ('High', 'Medium', 'Low') THEN lead_model_tier
    WHEN lead_probability >= @lead_tier_high THEN 'High'
    WHEN lead_probability >= @lead_tier_medium THEN 'Medium'
    ELSE 'Low'
  END::VARCHAR AS lead_tier,
  ROW_NUMBER() OVER (ORDER BY lead_probability DESC, customer_id)::BIGINT AS score_rank,
  score_source::VARCHAR AS score_source,
  page_views::BIGINT AS page_views,
  last_seen_at::TIMESTAMP AS last_seen_at,
  acquisition_source::VARCHAR AS acquisition_source
FROM @{dataset}.marts_marketing_customer_360
WHERE lifecycle_stage = 'lead'
