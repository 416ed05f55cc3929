// Purpose: link queries to their terms in a graph with no (:Query)-[:HAS_TERM]-> yet (the
//          loader's fast path; one row per pair; endpoints are internal node ids).
// Parameters: $rows — list of [query node id, term node id].
// Example: $rows = [[2001, 9001]]
UNWIND $rows AS row
MATCH (q:Query) WHERE id(q) = row[0]
MATCH (t:Term) WHERE id(t) = row[1]
CREATE (q)-[:HAS_TERM]->(t)
RETURN count(*) AS written
