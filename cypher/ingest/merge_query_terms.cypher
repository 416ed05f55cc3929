// Purpose: link queries to their terms.
// Parameters: $rows — list of {query, term}.
// Example: $rows = [{query: 'game race', term: 'race'}]
UNWIND $rows AS row
MATCH (q:Query {id: row.query})
MATCH (t:Term {id: row.term})
MERGE (q)-[:HAS_TERM]->(t)
RETURN count(*) AS written
