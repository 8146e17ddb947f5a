MODEL (
  name @{dataset}.marts_sales_transaction_history,
  kind INCREMENTAL_BY_TIME_RANGE (time_column event_date),
  partitioned_by (event_date),
  clustered_by (customer_id),
  grain (transaction_id),
  audits (
    not_null(columns := (transaction_id, customer_id, occurred_at, event_date, amount, purchase_number)),
    unique_values(columns := (transaction_id)),
    accepted_range(column := purchase_number, min_v := 1)
  ),
  description 'Every purchase, one row each, under the resolved customer (identity applied): the order, its
amount, discount and items, the campaign it names, and where it stands in the customer''s history (the how-manieth
purchase, the days since the previous one, the revenue to date). The history columns count every purchase of
the customer up to the row, on any earlier day. The customer is resolved as of the build of the row''s day; a later
merge of ids shows in customer_360 at once and here when the day is rebuilt.',
  column_descriptions @column_docs(marts_sales_transaction_history)
);

WITH ids AS (
  SELECT customer_id, canonical_customer_id FROM @{dataset}.intermediate_identity
),
purchases AS (
  SELECT
    e.event_id,
    e.customer_id AS logged_customer_id,
    COALESCE(i.canonical_customer_id, e.customer_id) AS customer_id,
    e.occurred_at,
    e.event_date,
    e.amount,
    e.campaign_id,
    e.channel,
    e.event_properties
  FROM @{dataset}.staging_events_all AS e
  LEFT JOIN ids AS i ON e.customer_id = i.customer_id
  WHERE e.event_type = 'purchase' AND e.event_date <= @end_ds
),
-- only the customers who bought in the interval need their history read
buyers AS (
  SELECT DISTINCT customer_id FROM purchases WHERE event_date BETWEEN @start_ds AND @end_ds
),
history AS (
  SELECT
    p.*,
    ROW_NUMBER() OVER (PARTITION BY p.customer_id ORDER BY p.occurred_at, p.event_id) AS purchase_number,
    LAG(p.occurred_at) OVER (PARTITION BY p.customer_id ORDER BY p.occurred_at, p.event_id) AS previous_at,
    SUM(COALESCE(p.amount, 0)) OVER (
      PARTITION BY p.customer_id ORDER BY p.occurred_at, p.event_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS revenue_to_date
  FROM purchases AS p
  WHERE p.customer_id IN (SELECT customer_id FROM buyers)
)
SELECT
  event_id::VARCHAR AS transaction_id,
  json_extract_string(event_properties, '$.order_id')::VARCHAR AS order_id,
  customer_id::VARCHAR AS customer_id,
  logged_customer_id::VARCHAR AS logged_customer_id,
  occurred_at::TIMESTAMP AS occurred_at,
  event_date::DATE AS event_date,
  COALESCE(amount, 0)::DOUBLE AS amount,
  COALESCE(CAST(json_extract_string(event_properties, '$.discount') AS DOUBLE), 0)::DOUBLE AS discount,
  COALESCE(json_extract_string(event_properties, '$.currency'), 'USD')::VARCHAR AS currency,
  COALESCE(CAST(json_extract_string(event_properties, '$.items') AS BIGINT), 1)::BIGINT AS items,
  campaign_id::VARCHAR AS campaign_id,
  purchase_number::BIGINT AS purchase_number,
  (purchase_number = 1)::BOOLEAN AS is_first_purchase,
  DATE_DIFF('day', CAST(previous_at AS DATE), event_date)::BIGINT AS days_since_previous_purchase,
  revenue_to_date::DOUBLE AS revenue_to_date
FROM history
WHERE event_date BETWEEN @start_ds AND @end_ds
