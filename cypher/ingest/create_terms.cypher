// Purpose: vocabulary terms into a graph that has no :Term yet (the loader's fast path).
// Returns: ids — [id, internal node id] of every row written.
// Parameters: $rows — list of {id}, one row per id.
// Example: $rows = [{id: 'race'}]
UNWIND $rows AS row
CREATE (t:Term {id: row.id})
RETURN collect([row.id, id(t)]) AS ids
