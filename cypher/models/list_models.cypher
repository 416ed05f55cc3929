// Purpose: every model version, newest first.
// Parameters: none.
MATCH (m:Model)
RETURN m {.*} AS model
ORDER BY m.created_at DESC
