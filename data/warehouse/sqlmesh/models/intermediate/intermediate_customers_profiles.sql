MODEL (
  name @{dataset}.intermediate_customers_profiles,
  kind EMBEDDED,
  grain (customer_id),
  description 'One row per customer the build recomputes (intermediate_customers_scope) that filled in a form: the
forms of all its logged ids (staging_customers_profiles). Across ids, a field comes from the id whose first form is
the latest among those that gave it; the acquisition is the earliest form''s. Embedded: a subquery of
intermediate_customers_summary.',
  column_descriptions @column_docs(intermediate_customers_profiles)
);

SELECT
  i.canonical_customer_id::VARCHAR AS customer_id,
  MAX_BY(p.email, CASE WHEN p.email IS NOT NULL THEN p.created_at END)::VARCHAR AS email,
  MAX_BY(p.first_name, CASE WHEN p.first_name IS NOT NULL THEN p.created_at END)::VARCHAR AS first_name,
  MAX_BY(p.last_name, CASE WHEN p.last_name IS NOT NULL THEN p.created_at END)::VARCHAR AS last_name,
  MIN_BY(p.acquisition_source, p.created_at)::VARCHAR AS acquisition_source,
  MIN(p.created_at)::TIMESTAMP AS lead_created_at
FROM @{dataset}.staging_customers_profiles AS p
JOIN @{dataset}.intermediate_customers_scope AS i ON p.customer_id = i.customer_id
GROUP BY i.canonical_customer_id
