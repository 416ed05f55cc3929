// Purpose: query → item "the click that followed this search", with its count (endpoints
//          are internal node ids).
// Parameters: $rows — list of [query node id, item node id, count].
// Example: $rows = [[5001, 2001, 3]]
UNWIND $rows AS row
MATCH (q:Query) WHERE id(q) = row[0]
MATCH (i:Item) WHERE id(i) = row[1]
MERGE (q)-[r:LED_TO]->(i)
SET r.count = row[2]
RETURN count(*) AS written
