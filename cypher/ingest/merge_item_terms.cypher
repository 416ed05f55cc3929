// Purpose: link items to the terms of their title/description (endpoints are internal node ids).
// Parameters: $rows — list of [item node id, term node id].
// Example: $rows = [[2001, 9001]]
UNWIND $rows AS row
MATCH (i:Item) WHERE id(i) = row[0]
MATCH (t:Term) WHERE id(t) = row[1]
MERGE (i)-[:HAS_TERM]->(t)
RETURN count(*) AS written
