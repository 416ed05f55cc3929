// Purpose: the newest policy version number of a model version (cheap poll; the actor bytes
//          are read only when it changes, through graphstore.policies.get_latest_policy).
// Parameters: $model_version.
// Example: $model_version = 'v20261126-233000-1a2b3c'
MATCH (p:Policy {model_version: $model_version})-[:POLICY_OF]->(:Model {version: $model_version})
RETURN max(p.version) AS version
