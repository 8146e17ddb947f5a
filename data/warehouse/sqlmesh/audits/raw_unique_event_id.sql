-- raw_events is written by the loader (or a Pub/Sub BigQuery subscription), not by SQLMesh, so its checks
-- are standalone audits that run on every build.
-- The loader writes each event once (the log is idempotent on event_id and the position moves with the
-- rows). A second row with the same event_id means corrupt input: a manual insert, or two loaders sharing
-- one stream.
AUDIT (name raw_unique_event_id, standalone true);
SELECT event_id, COUNT(*) AS copies
FROM @{dataset}.raw_events
GROUP BY event_id
HAVING COUNT(*) > 1
