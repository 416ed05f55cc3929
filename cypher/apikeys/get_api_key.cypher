// Purpose: one API key's hash, scope and revocation state (request authentication).
// Parameters: $id.
// Example: $id = 'k1a2b3c4d5e6'
MATCH (k:ApiKey {id: $id})
RETURN k.id AS id, k.hash AS hash, k.scope AS scope, k.revoked AS revoked
