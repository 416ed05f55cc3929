// Purpose: the newest policy version of a model version (serving loads its actor).
// Parameters: $model_version.
// Example: $model_version = 'v1'
MATCH (p:Policy {model_version: $model_version})-[:POLICY_OF]->(:Model {version: $model_version})
RETURN p.model_version AS model_version, p.version AS version, p.actor AS actor,
       p.created_at AS created_at
ORDER BY p.version DESC
LIMIT 1
