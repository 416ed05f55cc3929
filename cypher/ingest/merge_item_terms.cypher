// Purpose: link items to the terms of their title/description.
// Parameters: $rows — list of {item, term}.
// Example: $rows = [{item: 'i1', term: 'race'}]
UNWIND $rows AS row
MATCH (i:Item {id: row.item})
MATCH (t:Term {id: row.term})
MERGE (i)-[:HAS_TERM]->(t)
RETURN count(*) AS written
