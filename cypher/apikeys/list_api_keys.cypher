// Purpose: every API key (never the hash), newest first.
// Parameters: none.
// Example: (none)
MATCH (k:ApiKey)
RETURN k.id AS id, k.scope AS scope, k.name AS name, k.created_at AS created_at,
       k.revoked AS revoked, k.revoked_at AS revoked_at
ORDER BY k.created_at DESC, k.id
