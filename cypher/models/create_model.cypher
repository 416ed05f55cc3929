// Purpose: register a model version being written into a slot (status 'writing').
// Parameters: $version, $slot ('a' | 'b'), $dim, $model_name, $created_at (epoch seconds),
//             $run_id.
// Example: $version = 'v1', $slot = 'b', $dim = 64, $model_name = 'dpgcn'
MERGE (m:Model {version: $version})
ON CREATE SET m.created_at = $created_at, m.active = false
SET m.status = 'writing', m.slot = $slot, m.dim = $dim, m.model_name = $model_name,
    m.run_id = $run_id
RETURN m.version AS version
