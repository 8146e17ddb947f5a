-- No two rows share a value of the column (a null counts as a value). Cheaper than the built-in
-- unique_values (a window over every row): rows are grouped by a 64-bit hash of the key first, and only the
-- rows whose hash occurs twice are compared by the key itself, so hash collisions are never reported.
AUDIT (name unique_key);
WITH candidates AS (
  SELECT @fingerprint(@column) AS h
  FROM @this_model
  GROUP BY 1
  HAVING COUNT(*) > 1
)
SELECT m.@column, COUNT(*) AS copies
FROM @this_model AS m
WHERE @fingerprint(m.@column) IN (SELECT h FROM candidates)
GROUP BY 1
HAVING COUNT(*) > 1
