// Purpose: link items to their categories (endpoints are internal node ids).
// Parameters: $rows — list of [item node id, category node id].
// Example: $rows = [[2001, 9001]]
UNWIND $rows AS row
MATCH (i:Item) WHERE id(i) = row[0]
MATCH (c:Category) WHERE id(c) = row[1]
MERGE (i)-[:IN_CATEGORY]->(c)
RETURN count(*) AS written
