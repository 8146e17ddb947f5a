MODEL (
  name @{dataset}.staging_customers_profiles,
  kind INCREMENTAL_BY_UNIQUE_KEY (unique_key customer_id),
  clustered_by (customer_id),
  grain (customer_id),
  audits (
    not_null(columns := (customer_id, created_at)),
    unique_values(columns := (customer_id))
  ),
  description 'One row per customer that filled in a form (lead_created): the latest non-empty value of
each field, and the first lead event for acquisition. Reads raw_events directly, because only
lead_created rows are needed and their fields live in the JSON payload. Each build reads only the new days''
lead events and merges them with the row the id already has (@this_model): the new days are later than every
day the row was built from, so a field the new days filled in wins, and the first lead stays the old one. As in
intermediate_ids_activity, a row is merged only when it was written for days before the interval
(built_through); a restated day rebuilds this model from its first day (build.py restates it with raw''s other
readers), replacing rows.',
  column_descriptions @column_docs(staging_customers_profiles)
);

WITH leads AS (
  SELECT
    customer_id,
    occurred_at,
    LOWER(json_extract_string(properties, '$.email')) AS email,
    json_extract_string(properties, '$.first_name') AS first_name,
    json_extract_string(properties, '$.last_name') AS last_name,
    json_extract_string(properties, '$.company') AS company,
    json_extract_string(properties, '$.context.crm_contact_id') AS crm_contact_id,
    json_extract_string(properties, '$.acquisition_source') AS acquisition_source,
    campaign_id,
    anonymous_id
  FROM @{dataset}.raw_events
  WHERE event_type = 'lead_created'
    AND occurred_at BETWEEN CAST(@start_ts AS TIMESTAMP) AND CAST(@end_ts AS TIMESTAMP)
),
fresh AS (
  SELECT
    customer_id,
    MAX_BY(email, CASE WHEN email IS NOT NULL THEN occurred_at END) AS email,
    MAX_BY(first_name, CASE WHEN first_name IS NOT NULL THEN occurred_at END) AS first_name,
    MAX_BY(last_name, CASE WHEN last_name IS NOT NULL THEN occurred_at END) AS last_name,
    MAX_BY(company, CASE WHEN company IS NOT NULL THEN occurred_at END) AS company,
    MAX_BY(crm_contact_id, CASE WHEN crm_contact_id IS NOT NULL THEN occurred_at END) AS crm_contact_id,
    MAX_BY(anonymous_id, CASE WHEN anonymous_id IS NOT NULL THEN occurred_at END) AS anonymous_id,
    MIN_BY(acquisition_source, occurred_at) AS acquisition_source,
    MIN_BY(campaign_id, occurred_at) AS acquisition_campaign_id,
    MIN(occurred_at) AS created_at
  FROM leads
  GROUP BY customer_id
)
SELECT
  f.customer_id::VARCHAR AS customer_id,
  COALESCE(f.email, o.email)::VARCHAR AS email,
  COALESCE(f.first_name, o.first_name)::VARCHAR AS first_name,
  COALESCE(f.last_name, o.last_name)::VARCHAR AS last_name,
  COALESCE(f.company, o.company)::VARCHAR AS company,
  COALESCE(f.crm_contact_id, o.crm_contact_id)::VARCHAR AS crm_contact_id,
  COALESCE(f.anonymous_id, o.anonymous_id)::VARCHAR AS anonymous_id,
  (CASE WHEN o.customer_id IS NULL THEN f.acquisition_source ELSE o.acquisition_source END)::VARCHAR AS acquisition_source,
  (CASE WHEN o.customer_id IS NULL THEN f.acquisition_campaign_id ELSE o.acquisition_campaign_id END)::VARCHAR
    AS acquisition_campaign_id,
  COALESCE(o.created_at, f.created_at)::TIMESTAMP AS created_at,
  CAST(@end_ds AS DATE) AS built_through
FROM fresh AS f
LEFT JOIN (SELECT * FROM @this_model WHERE built_through < @start_ds) AS o ON o.customer_id = f.customer_id
