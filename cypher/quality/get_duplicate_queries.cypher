// Purpose: search queries that are the same set of terms in another order or form ('red
//          shoes' / 'shoes red'), which normalisation should have merged.
// Parameters: $limit.
// Example: $limit = 20
MATCH (q:Query)-[:HAS_TERM]->(t:Term)
WITH q, t.id AS term ORDER BY term
WITH q, collect(term) AS terms
WITH terms, collect(q.id) AS queries
WHERE size(queries) > 1
RETURN terms, queries, size(queries) AS duplicates
ORDER BY duplicates DESC, terms
LIMIT $limit
