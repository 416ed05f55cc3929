// Purpose: re-create erasure tombstones (:ErasedUser {id_hash}) from the erasure log after a
//          restore, for erased ids that have no User node in the restored graph (so that their
//          later events are still refused). Idempotent.
// Parameters: $hashes (HMAC-SHA256 of user ids with the graph's erasure salt), $now (epoch
//             seconds, the time kept when a tombstone is new).
// Example: $hashes = ['5d41402abc4b2a76…'], $now = 1700000000.0
UNWIND $hashes AS h
MERGE (t:ErasedUser {id_hash: h})
  ON CREATE SET t.erased_at = $now
RETURN count(t) AS tombstones
