// Purpose: nodes with no relationship at all (users, items, queries, terms, categories that
//          nothing refers to), per label with a sample of ids.
// Parameters: $sample — how many ids to show per label.
// Example: $sample = 5
MATCH (n)
WHERE (n:User OR n:Item OR n:Query OR n:Term OR n:Category) AND NOT EXISTS { (n)--() }
WITH labels(n)[0] AS label, collect(n.id) AS ids
RETURN label, size(ids) AS orphans, ids[..$sample] AS sample
ORDER BY orphans DESC, label
