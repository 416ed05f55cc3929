// Purpose: queries into a graph that has no :Query yet (the loader's fast path).
// Returns: ids — [id, internal node id] of every row written.
// Parameters: $rows — list of {id, text}, one row per id.
// Example: $rows = [{id: 'game race', text: 'racing games'}]
UNWIND $rows AS row
CREATE (q:Query {id: row.id, text: row.text})
RETURN collect([row.id, id(q)]) AS ids
