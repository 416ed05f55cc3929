// Purpose: query → item "the click that followed this search", with its count.
// Parameters: $rows — list of {query, item, count}.
// Example: $rows = [{query: 'game race', item: 'i1', count: 3}]
UNWIND $rows AS row
MATCH (q:Query {id: row.query})
MATCH (i:Item {id: row.item})
MERGE (q)-[r:LED_TO]->(i)
SET r.count = row.count
RETURN count(*) AS written
