-- The envelope's keys are never null in raw_events.
AUDIT (name raw_not_null_keys, standalone true, start '2000-01-01');
SELECT event_id, event_type, customer_id, occurred_at
FROM @{dataset}.raw_events
WHERE event_id IS NULL OR event_type IS NULL OR customer_id IS NULL OR occurred_at IS NULL
