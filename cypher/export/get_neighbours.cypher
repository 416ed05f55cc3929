// Purpose: one hop of a k-hop export: the distinct neighbours (either direction, over the
//          graph model's relationship types) of a batch of nodes, grouped by label. Users who
//          withdrew consent are neither returned nor walked through.
// Parameters: $nids — internal ids of the frontier; $types — relationship types to follow;
//             $labels — node labels to return.
// Example: $nids = [3, 7], $types = ['CLICKED', 'HAS_TERM'], $labels = ['User', 'Item']
UNWIND $nids AS nid
MATCH (n)-[r]-(m)
WHERE id(n) = nid AND type(r) IN $types AND (NOT m:User OR coalesce(m.consent, true))
WITH DISTINCT m
WITH [l IN labels(m) WHERE l IN $labels][0] AS label, id(m) AS nid
WHERE label IS NOT NULL
RETURN label, collect(nid) AS nids
