// Purpose: create queries; id is the normalized text, text one raw form seen.
// Returns: ids — [id, internal node id] of every row written (the loader resolves
//          relationship endpoints with them instead of an index seek per row).
// Parameters: $rows — list of {id, text}.
// Example: $rows = [{id: 'game race', text: 'racing games'}]
UNWIND $rows AS row
MERGE (q:Query {id: row.id})
SET q.text = coalesce(q.text, row.text)
RETURN collect([row.id, id(q)]) AS ids
