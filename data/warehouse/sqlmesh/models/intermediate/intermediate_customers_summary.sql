MODEL (
  name @{dataset}.intermediate_customers_summary,
  kind INCREMENTAL_BY_UNIQUE_KEY (unique_key customer_id),
  clustered_by (customer_id),
  grain (customer_id),
  audits (
    not_null(columns := (customer_id, first_seen_at)),
    unique_values(columns := (customer_id))
  ),
  description 'One row per resolved customer: its activity, forms, consents and model scores side by side
(intermediate_customers_activity, _profiles, _consents, _scores), stored so that marts_marketing_customer_360 reads one
table. Each build recomputes only the customers the new days touched (intermediate_customers_scope) and upserts their
rows. A customer merged into another keeps its old row here; customer_360 shows canonical ids only. The recomputed
rows are complete (not merged with the old row), so a restated day, which rebuilds this model from its first day,
gives the same rows.',
  column_descriptions @column_docs(intermediate_customers_summary)
);

SELECT
  a.customer_id::VARCHAR AS customer_id,
  p.email::VARCHAR AS email,
  p.first_name::VARCHAR AS first_name,
  p.last_name::VARCHAR AS last_name,
  p.acquisition_source::VARCHAR AS form_acquisition_source,
  p.lead_created_at::TIMESTAMP AS lead_created_at,
  a.first_source::VARCHAR AS first_source,
  a.first_seen_at::TIMESTAMP AS first_seen_at,
  a.last_seen_at::TIMESTAMP AS last_seen_at,
  a.total_purchases::BIGINT AS total_purchases,
  a.total_revenue::DOUBLE AS total_revenue,
  a.last_purchase_at::TIMESTAMP AS last_purchase_at,
  a.events_total::BIGINT AS events_total,
  a.page_views::BIGINT AS page_views,
  a.content_downloads::BIGINT AS content_downloads,
  a.email_opens::BIGINT AS email_opens,
  a.email_clicks::BIGINT AS email_clicks,
  a.sms_clicks::BIGINT AS sms_clicks,
  a.push_opens::BIGINT AS push_opens,
  a.ad_clicks::BIGINT AS ad_clicks,
  a.offers_received::BIGINT AS offers_received,
  a.support_tickets::BIGINT AS support_tickets,
  a.last_channel::VARCHAR AS last_channel,
  a.merged_ids::BIGINT AS merged_ids,
  k.consent_email::BOOLEAN AS consent_email,
  k.consent_sms::BOOLEAN AS consent_sms,
  k.consent_push::BOOLEAN AS consent_push,
  k.consent_ad::BOOLEAN AS consent_ad,
  s.lead_model::DOUBLE AS lead_model,
  s.lead_model_tier::VARCHAR AS lead_model_tier,
  s.churn_model::DOUBLE AS churn_model,
  s.clv_model::DOUBLE AS clv_model,
  CAST(@end_ds AS DATE) AS built_through
FROM @{dataset}.intermediate_customers_activity AS a
LEFT JOIN @{dataset}.intermediate_customers_profiles AS p ON p.customer_id = a.customer_id
LEFT JOIN @{dataset}.intermediate_customers_consents AS k ON k.customer_id = a.customer_id
LEFT JOIN @{dataset}.intermediate_customers_scores AS s ON s.customer_id = a.customer_id
