-- Every key in the audited column exists in the parent model.
AUDIT (name referential_integrity);
SELECT child.@column
FROM @this_model AS child
LEFT JOIN @parent AS parent
  ON child.@column = parent.@parent_column
WHERE child.@column IS NOT NULL AND parent.@parent_column IS NULL
