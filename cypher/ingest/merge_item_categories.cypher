// Purpose: put items in categories.
// Parameters: $rows — list of {item, category}.
// Example: $rows = [{item: 'i1', category: 'c0.1'}]
UNWIND $rows AS row
MATCH (i:Item {id: row.item})
MATCH (c:Category {id: row.category})
MERGE (i)-[:IN_CATEGORY]->(c)
RETURN count(*) AS written
