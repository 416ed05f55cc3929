// Purpose: create vocabulary terms (stems).
// Parameters: $rows — list of {id}.
// Example: $rows = [{id: 'race'}]
UNWIND $rows AS row
MERGE (:Term {id: row.id})
RETURN count(*) AS written
