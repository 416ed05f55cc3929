// Purpose: make a complete version the active one, atomically (one transaction: the old
//          active version is retired in the same write).
// Parameters: $version, $activated_at.
// Example: $version = 'v1'
MATCH (m:Model {version: $version, status: 'complete'})
OPTIONAL MATCH (old:Model {active: true})
WHERE old <> m
SET old.active = false
SET m.active = true, m.activated_at = $activated_at
RETURN m.version AS version, m.slot AS slot
