// Purpose: item → category links into a graph with no IN_CATEGORY yet (the loader's fast
//          path; one row per pair).
// Parameters: $rows — list of {item, category}.
// Example: $rows = [{item: 'i1', category: 'c0.1'}]
UNWIND $rows AS row
MATCH (i:Item {id: row.item})
MATCH (c:Category {id: row.category})
CREATE (i)-[:IN_CATEGORY]->(c)
RETURN count(*) AS written
