-- raw_events is written by the loader (or a Pub/Sub BigQuery subscription), not by SQLMesh, so its checks
-- are standalone audits that run on every build.
-- The loader writes each event once (the log is idempotent on event_id and the position moves with the
-- rows). A second row with the same event_id means corrupt input: a manual insert, or two loaders sharing
-- one stream. The check covers the days touched by loads since the previous build (all days on the first
-- build), so its cost follows the new data; rows written outside the loader are caught by
-- raw_row_count_reconciliation.
AUDIT (name raw_unique_event_id, standalone true, start '2000-01-01');
WITH previous AS (
  SELECT COALESCE(MAX(last_loaded_at), CAST('1970-01-01' AS TIMESTAMP)) AS loaded_at
  FROM @{dataset}.warehouse_build_state
),
touched AS (
  SELECT COALESCE(MIN(l.min_occurred_at), CAST('9999-12-31' AS TIMESTAMP)) AS since
  FROM @{dataset}.raw_loads AS l CROSS JOIN previous AS p
  WHERE l.loaded_at > p.loaded_at
)
SELECT r.event_id, COUNT(*) AS copies
FROM @{dataset}.raw_events AS r CROSS JOIN touched AS t
WHERE r.occurred_at >= t.since
GROUP BY r.event_id
HAVING COUNT(*) > 1
