MODEL (
  name @{dataset}.staging_customers_identity,
  kind FULL,
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
rounds, which resolves chains of up to five alternating id-identifier hops.',
  column_descriptions (
    customer_id = 'An id events were logged under.',
    canonical_customer_id = 'The id of the customer it belongs to.',
    component_size = 'How many ids the customer has.',
    is_merged = 'True when customer_id is not the canonical id.'
  )
);

WITH profiles AS (
  SELECT customer_id, email, crm_contact_id, created_at FROM @{dataset}.staging_customers_profiles
),
merges AS (
  SELECT customer_id, merged_id
  FROM @{dataset}.raw_events
  CROSS JOIN UNNEST(@json_string_array(properties, '$.merged_ids')) AS m(merged_id)
  WHERE event_type = 'identity_merged'
),
links AS (
  SELECT customer_id, 'anonymous_id:' || anonymous_id AS identifier
  FROM @{dataset}.staging_customers_anonymous_ids
  UNION DISTINCT
  SELECT customer_id, 'email:' || email FROM profiles WHERE email IS NOT NULL
  UNION DISTINCT
  SELECT customer_id, 'crm_contact_id:' || crm_contact_id FROM profiles WHERE crm_contact_id IS NOT NULL
  UNION DISTINCT
  SELECT customer_id, 'customer_id:' || customer_id FROM merges
  UNION DISTINCT
  SELECT merged_id, 'customer_id:' || customer_id FROM merges
  UNION DISTINCT
  SELECT customer_id, 'customer_id:' || customer_id
  FROM @{dataset}.staging_customers_activity
),
-- Propagation joins and groups integers, not strings (about a quarter cheaper): ids and identifiers are
-- numbered in any order, since a label only names a component; the canonical id is chosen from the ids.
id_numbers AS (SELECT customer_id, ROW_NUMBER() OVER () AS node FROM (SELECT DISTINCT customer_id FROM links) AS d),
identifier_numbers AS (SELECT identifier, ROW_NUMBER() OVER () AS ident FROM (SELECT DISTINCT identifier FROM links) AS d),
edges AS (
  SELECT n.node, k.ident
  FROM links AS l
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
  (c.customer_id <> k.canonical_customer_id)::BOOLEAN AS is_merged
FROM c5 AS c
JOIN canonical AS k ON c.label = k.label
