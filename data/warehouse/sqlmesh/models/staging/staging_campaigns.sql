MODEL (
  name @{dataset}.staging_campaigns,
  kind FULL,
  grain (campaign_id),
  audits (
    not_null(columns := (campaign_id, campaign_name, start_date)),
    unique_values(columns := (campaign_id))
  ),
  description 'Every campaign stated by a campaign_updated event, as its latest event states it (a later event
replaces the name, channel, dates and budget). Campaign events are few and logged under the broadcast id, so
this reads them from staging_events_all''s broadcast rows.',
  column_descriptions @column_docs(staging_campaigns)
);

SELECT
  campaign_id::VARCHAR AS campaign_id,
  COALESCE(json_extract_string(event_properties, '$.name'), campaign_id)::VARCHAR AS campaign_name,
  channel::VARCHAR AS channel,
  CAST(json_extract_string(event_properties, '$.start_date') AS DATE) AS start_date,
  CAST(json_extract_string(event_properties, '$.end_date') AS DATE) AS end_date,
  CAST(json_extract_string(event_properties, '$.daily_budget') AS DOUBLE) AS daily_budget,
  occurred_at::TIMESTAMP AS updated_at
FROM @{dataset}.staging_events_all
WHERE customer_id = @broadcast_customer_id AND event_type = 'campaign_updated' AND campaign_id IS NOT NULL
QUALIFY ROW_NUMBER() OVER (PARTITION BY campaign_id ORDER BY occurred_at DESC, recorded_at DESC, event_id DESC) = 1
