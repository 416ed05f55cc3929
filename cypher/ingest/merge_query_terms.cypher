// Purpose: link queries to their terms (endpoints are internal node ids).
// Parameters: $rows — list of [query node id, term node id].
// Example: $rows = [[2001, 9001]]
UNWIND $rows AS row
MATCH (q:Query) WHERE id(q) = row[0]
MATCH (t:Term) WHERE id(t) = row[1]
MERGE (q)-[:HAS_TERM]->(t)
RETURN count(*) AS written
