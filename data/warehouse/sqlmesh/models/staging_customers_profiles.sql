MODEL (
  name @{dataset}.staging_customers_profiles,
  kind FULL,
  grain (customer_id),
  audits (
    not_null(columns := (customer_id, created_at)),
    unique_values(columns := (customer_id))
  ),
  description 'One row per customer that filled in a form (lead_created): the latest non-empty value of
each field, and the first lead event for acquisition. Reads raw_events directly, because only
lead_created rows are needed and their fields live in the JSON payload.',
  column_descriptions (
    customer_id = 'Id the lead was logged under.',
    email = 'Latest email given, lower-cased.',
    first_name = 'Latest first name given.',
    last_name = 'Latest last name given.',
    company = 'Latest company given.',
    crm_contact_id = 'CRM contact id (properties.context.crm_contact_id), if a CRM sync sent one.',
    anonymous_id = 'Visitor id the form was filled in from.',
    acquisition_source = 'acquisition_source of the first lead event.',
    acquisition_campaign_id = 'campaign_id of the first lead event.',
    created_at = 'Time of the first lead event.'
  )
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
)
SELECT
  customer_id::VARCHAR AS customer_id,
  MAX_BY(email, CASE WHEN email IS NOT NULL THEN occurred_at END)::VARCHAR AS email,
  MAX_BY(first_name, CASE WHEN first_name IS NOT NULL THEN occurred_at END)::VARCHAR AS first_name,
  MAX_BY(last_name, CASE WHEN last_name IS NOT NULL THEN occurred_at END)::VARCHAR AS last_name,
  MAX_BY(company, CASE WHEN company IS NOT NULL THEN occurred_at END)::VARCHAR AS company,
  MAX_BY(crm_contact_id, CASE WHEN crm_contact_id IS NOT NULL THEN occurred_at END)::VARCHAR AS crm_contact_id,
  MAX_BY(anonymous_id, CASE WHEN anonymous_id IS NOT NULL THEN occurred_at END)::VARCHAR AS anonymous_id,
  MIN_BY(acquisition_source, occurred_at)::VARCHAR AS acquisition_source,
  MIN_BY(campaign_id, occurred_at)::VARCHAR AS acquisition_campaign_id,
  MIN(occurred_at)::TIMESTAMP AS created_at
FROM leads
GROUP BY customer_id
