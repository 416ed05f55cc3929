// Purpose: every policy version of a model version with its statistics (no actor bytes),
//          newest first.
// Parameters: $model_version.
// Example: $model_version = 'v1'
MATCH (p:Policy {model_version: $model_version})-[:POLICY_OF]->(:Model {version: $model_version})
RETURN p {.*, actor: null} AS policy
ORDER BY p.version DESC
