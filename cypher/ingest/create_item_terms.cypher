// Purpose: link items to their title's terms in a graph with no (:Item)-[:HAS_TERM]-> yet (the
//          loader's fast path; one row per pair; endpoints are internal node ids).
// Parameters: $rows — list of [item node id, term node id].
// Example: $rows = [[2001, 9001]]
UNWIND $rows AS row
MATCH (i:Item) WHERE id(i) = row[0]
MATCH (t:Term) WHERE id(t) = row[1]
CREATE (i)-[:HAS_TERM]->(t)
RETURN count(*) AS written
