// Purpose: revoke an API key (kept for audit; it never authenticates again).
// Parameters: $id, $revoked_at (epoch seconds).
// Example: $id = 'k1a2b3c4d5e6', $revoked_at = 1700000000.0
MATCH (k:ApiKey {id: $id})
SET k.revoked = true, k.revoked_at = coalesce(k.revoked_at, $revoked_at)
RETURN k.id AS id
