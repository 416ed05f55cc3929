// Purpose: one model version's record.
// Parameters: $version.
// Example: $version = 'v1'
MATCH (m:Model {version: $version})
RETURN m {.*} AS model
