// Purpose: create queries; id is the normalized text, text one raw form seen.
// Parameters: $rows — list of {id, text}.
// Example: $rows = [{id: 'game race', text: 'racing games'}]
UNWIND $rows AS row
MERGE (q:Query {id: row.id})
SET q.text = coalesce(q.text, row.text)
RETURN count(*) AS written
