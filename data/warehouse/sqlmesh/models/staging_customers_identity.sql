MODEL (
  name @{dataset}.staging_customers_identity,
  kind FULL,
  grain (customer_id),
  audits (
    not_null(columns := (customer_id, canonical_customer_id)),
    unique_key(column := customer_id)
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
nodes AS (SELECT DISTINCT customer_id FROM links),
i1 AS (SELECT l.identifier, MIN(l.customer_id) AS label FROM links AS l GROUP BY l.identifier),
c1 AS (SELECT l.customer_id, MIN(i.label) AS label FROM links AS l JOIN i1 AS i ON l.identifier = i.identifier GROUP BY l.customer_id),
i2 AS (SELECT l.identifier, MIN(c.label) AS label FROM links AS l JOIN c1 AS c ON l.customer_id = c.customer_id GROUP BY l.identifier),
c2 AS (SELECT l.customer_id, MIN(i.label) AS label FROM links AS l JOIN i2 AS i ON l.identifier = i.identifier GROUP BY l.customer_id),
i3 AS (SELECT l.identifier, MIN(c.label) AS label FROM links AS l JOIN c2 AS c ON l.customer_id = c.customer_id GROUP BY l.identifier),
c3 AS (SELECT l.customer_id, MIN(i.label) AS label FROM links AS l JOIN i3 AS i ON l.identifier = i.identifier GROUP BY l.customer_id),
i4 AS (SELECT l.identifier, MIN(c.label) AS label FROM links AS l JOIN c3 AS c ON l.customer_id = c.customer_id GROUP BY l.identifier),
c4 AS (SELECT l.customer_id, MIN(i.label) AS label FROM links AS l JOIN i4 AS i ON l.identifier = i.identifier GROUP BY l.customer_id),
i5 AS (SELECT l.identifier, MIN(c.label) AS label FROM links AS l JOIN c4 AS c ON l.customer_id = c.customer_id GROUP BY l.identifier),
c5 AS (SELECT l.customer_id, MIN(i.label) AS label FROM links AS l JOIN i5 AS i ON l.identifier = i.identifier GROUP BY l.customer_id),
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
