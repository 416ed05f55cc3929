// Purpose: query → item LED_TO links into a graph that has none yet (the loader's fast
//          path; one row per pair).
// Parameters: $rows — list of {query, item, count}.
// Example: $rows = [{query: 'game race', item: 'i1', count: 3}]
UNWIND $rows AS row
MATCH (q:Query {id: row.query})
MATCH (i:Item {id: row.item})
CREATE (q)-[:LED_TO {count: row.count}]->(i)
RETURN count(*) AS written
