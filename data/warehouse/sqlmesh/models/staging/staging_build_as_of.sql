MODEL (
  name @{dataset}.staging_build_as_of,
  kind FULL,
  grain (execution_date),
  audits (
    not_null(columns := (execution_date))
  ),
  description 'One row: the day after the last day of the latest build (its execution date). customer_360 is a
view that computes its date-dependent columns (churn risk, lifecycle stage, segment, fallback CLV) against this
date, so a build rewrites one row here instead of every customer''s row.',
  column_descriptions @column_docs(staging_build_as_of)
);

SELECT CAST(@execution_ds AS DATE) AS execution_date
