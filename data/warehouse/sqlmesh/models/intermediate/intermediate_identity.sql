MODEL (
  name @{dataset}.intermediate_identity,
  kind INCREMENTAL_BY_UNIQUE_KEY (unique_key customer_id),
  clustered_by (customer_id),
  grain (customer_id),
  audits (
    not_null(columns := (customer_id, canonical_customer_id)),
    unique_values(columns := (customer_id))
  ),
  description 'Identity resolution: every customer_id seen, mapped to one canonical customer_id. Ids are
linked when they share an identifier (an anonymous web or app id, an email, a CRM contact id) or when an
identity_merged event names them; the connected components of that graph are customers. The canonical id
of a component is its earliest lead (lead_created) id, else its smallest id. data/identity.py computes the
same mapping in Python for the profile projection. Components are found by min-label propagation over five
rounds, which resolves chains of up to five alternating id-identifier hops.
A build recomputes only the components the new days can change, and upserts their ids: the component of an id
whose form changed (its email or CRM id may have changed, which can split it), and every component linked to an
identifier of the new days that now spans more than one old component or a new id (a merge). Every link of
those ids is followed, so the recomputed part is closed; the other components keep their rows. As in
intermediate_ids_activity, the old rows are those written for days before the interval (built_through): a
restated day rebuilds every component.',
  column_descriptions @column_docs(intermediate_identity)
);

WITH old AS (
  SELECT customer_id, canonical_customer_id FROM @this_model WHERE built_through < @start_ds
),
profiles AS (
  SELECT customer_id, email, crm_contact_id, created_at, built_through FROM @{dataset}.staging_customers_profiles
),
merges AS (
  SELECT customer_id, merged_id, occurred_at
  FROM @{dataset}.raw_events
  CROSS JOIN UNNEST(@json_string_array(properties, '$.merged_ids')) AS m(merged_id)
  WHERE event_type = 'identity_merged'
),
-- every link (id, identifier); fresh: the link was written by the new days (a superset of the new links)
links AS (
  SELECT customer_id, 'anonymous_id:' || anonymous_id AS identifier, built_through >= @start_ds AS fresh
  FROM @{dataset}.intermediate_ids_anonymous_ids
  UNION ALL
  SELECT customer_id, 'email:' || email, built_through >= @start_ds FROM profiles WHERE email IS NOT NULL
  UNION ALL
  SELECT customer_id, 'crm_contact_id:' || crm_contact_id, built_through >= @start_ds
  FROM profiles WHERE crm_contact_id IS NOT NULL
  UNION ALL
  SELECT customer_id, 'customer_id:' || customer_id, occurred_at >= CAST(@start_ts AS TIMESTAMP) FROM merges
  UNION ALL
  SELECT merged_id, 'customer_id:' || customer_id, occurred_at >= CAST(@start_ts AS TIMESTAMP) FROM merges
  UNION ALL
  SELECT customer_id, 'customer_id:' || customer_id, built_through >= @start_ds
  FROM @{dataset}.intermediate_ids_activity
),
fresh_identifiers AS (SELECT DISTINCT identifier FROM links WHERE fresh),
-- an identifier of the new days merges when its ids span several old components, or an old one and a new id
merging AS (
  SELECT l.identifier
  FROM links AS l
  JOIN fresh_identifiers AS f ON l.identifier = f.identifier
  LEFT JOIN old AS o ON l.customer_id = o.customer_id
  GROUP BY l.identifier
  HAVING COUNT(DISTINCT o.canonical_customer_id) + COUNT(DISTINCT CASE WHEN o.customer_id IS NULL THEN l.customer_id END) > 1
),
seeds AS (
  SELECT l.customer_id FROM links AS l JOIN merging AS m ON l.identifier = m.identifier
  UNION
  SELECT customer_id FROM profiles WHERE built_through >= @start_ds
  UNION
  -- new ids (their links are all of the new days)
  SELECT l.customer_id FROM links AS l LEFT JOIN old AS o ON l.customer_id = o.customer_id
  WHERE l.fresh AND o.customer_id IS NULL
),
affected AS (
  SELECT o.customer_id
  FROM old AS o
  WHERE o.canonical_customer_id IN (SELECT s_o.canonical_customer_id FROM seeds AS s JOIN old AS s_o ON s.customer_id = s_o.customer_id)
  UNION
  SELECT customer_id FROM seeds
),
sub_links AS (
  SELECT DISTINCT l.customer_id, l.identifier
  FROM links AS l
  JOIN affected AS a ON l.customer_id = a.customer_id
),
-- Propagation joins and groups integers, not strings (about a quarter cheaper): ids and identifiers are
-- numbered in any order, since a label only names a component; the canonical id is chosen from the ids.
id_numbers AS (SELECT customer_id, ROW_NUMBER() OVER () AS node FROM (SELECT DISTINCT customer_id FROM sub_links) AS d),
identifier_numbers AS (SELECT identifier, ROW_NUMBER() OVER () AS ident FROM (SELECT DISTINCT identifier FROM sub_links) AS d),
edges AS (
  SELECT n.node, k.ident
  FROM sub_links AS l
  JOIN id_numbers AS n ON l.customer_id = n.customer_id
  JOIN identifier_numbers AS k ON l.identifier = k.identifier
),
i1 AS (SELECT e.ident, MIN(e.node) AS label FROM edges AS e GROUP BY e.ident),
c1 AS (SELECT e.node, MIN(i.label) AS label FROM edges AS e JOIN i1 AS i ON e.ident = i.ident GROUP BY e.node),
i2 AS (SELECT e.ident, MIN(c.label) AS label FROM edges AS e JOIN c1 AS c ON e.node = c.node GROUP BY e.ident),
c2 AS (SELECT e.node, MIN(i.label) AS label FROM edges AS e JOIN i2 AS i ON e.ident = i.ident GROUP BY e.node),
i3 AS (SELECT e.ident, MIN(c.label) AS label FROM edges AS e JOIN c2 AS c ON e.node = c.node GROUP BY e.ident),
c3 AS (SELECT e.node, MIN(i.label) AS label FROM edges AS e JOIN i3 AS i ON e.ident = i.ident GROUP BY e.node),
i4 AS (SELECT e.ident, MIN(c.label) AS label FROM edges AS e JOIN c3 AS c ON e.node = c.node GROUP BY e.ident),
c4 AS (SELECT e.node, MIN(i.label) AS label FROM edges AS e JOIN i4 AS i ON e.ident = i.ident GROUP BY e.node),
i5 AS (SELECT e.ident, MIN(c.label) AS label FROM edges AS e JOIN c4 AS c ON e.node = c.node GROUP BY e.ident),
c5_nodes AS (SELECT e.node, MIN(i.label) AS label FROM edges AS e JOIN i5 AS i ON e.ident = i.ident GROUP BY e.node),
c5 AS (SELECT n.customer_id, c.label FROM c5_nodes AS c JOIN id_numbers AS n ON n.node = c.node),
canonical AS (
  SELECT
    c.label,
    COALESCE(MIN_BY(p.customer_id, p.created_at), MIN(c.customer_id)) AS canonical_customer_id,
    COUNT(*) AS component_size
  FROM c5 AS c
  LEFT JOIN profiles AS p ON p.customer_id = c.customer_id
  GROUP BY c.label
)
SELECT
  c.customer_id::VARCHAR AS customer_id,
  k.canonical_customer_id::VARCHAR AS canonical_customer_id,
  k.component_size::BIGINT AS component_size,
  (c.customer_id <> k.canonical_customer_id)::BOOLEAN AS is_merged,
  CAST(@end_ds AS DATE) AS built_through
FROM c5 AS c
JOIN canonical AS k ON c.label = k.label
