// Purpose: query → item LED_TO links into a graph that has none yet (the loader's fast
//          path; one row per pair; endpoints are internal node ids).
// Parameters: $rows — list of [query node id, item node id, count].
// Example: $rows = [[5001, 2001, 3]]
UNWIND $rows AS row
MATCH (q:Query) WHERE id(q) = row[0]
MATCH (i:Item) WHERE id(i) = row[1]
CREATE (q)-[:LED_TO {count: row[2]}]->(i)
RETURN count(*) AS written
