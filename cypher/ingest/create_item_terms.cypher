// Purpose: item → term links into a graph with no (:Item)-[:HAS_TERM]-> yet (the loader's
//          fast path; one row per pair).
// Parameters: $rows — list of {item, term}.
// Example: $rows = [{item: 'i1', term: 'race'}]
UNWIND $rows AS row
MATCH (i:Item {id: row.item})
MATCH (t:Term {id: row.term})
CREATE (i)-[:HAS_TERM]->(t)
RETURN count(*) AS written
