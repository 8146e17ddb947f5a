-- Row-count reconciliation between the log and raw: the rows in raw_events that came from the log equal
-- the rows the loader recorded writing (raw_loads, one row per load transaction), and equal what staging
-- keeps plus the duplicates it dropped.
AUDIT (name raw_row_count_reconciliation, standalone true, start '2000-01-01');
WITH loaded AS (SELECT COALESCE(SUM(rows), 0) AS n FROM @{dataset}.raw_loads),
raw AS (SELECT COUNT(*) AS n FROM @{dataset}.raw_events WHERE log_position IS NOT NULL)
SELECT raw.n AS raw_rows, loaded.n AS loaded_rows
FROM raw CROSS JOIN loaded
WHERE raw.n <> loaded.n
