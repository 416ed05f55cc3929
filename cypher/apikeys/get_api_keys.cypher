// Purpose: every API key's id, hash, scope and revocation state: the API's in-memory key
//          table, read whole (api/security.py), so requests never read a key one by one.
// Parameters: none.
// Example: (none)
MATCH (k:ApiKey)
RETURN k.id AS id, k.hash AS hash, k.scope AS scope, coalesce(k.revoked, false) AS revoked
