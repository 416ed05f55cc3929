// Purpose: create vocabulary terms (stems).
// Returns: ids — [id, internal node id] of every row written (the loader resolves
//          relationship endpoints with them instead of an index seek per row).
// Parameters: $rows — list of {id}.
// Example: $rows = [{id: 'race'}]
UNWIND $rows AS row
MERGE (t:Term {id: row.id})
RETURN collect([row.id, id(t)]) AS ids
