// Purpose: query → term links into a graph with no (:Query)-[:HAS_TERM]-> yet (the loader's
//          fast path; one row per pair).
// Parameters: $rows — list of {query, term}.
// Example: $rows = [{query: 'game race', term: 'race'}]
UNWIND $rows AS row
MATCH (q:Query {id: row.query})
MATCH (t:Term {id: row.term})
CREATE (q)-[:HAS_TERM]->(t)
RETURN count(*) AS written
