// Purpose: record whether a user allows personalization (false: non-personalized answers and
//          no training exports). Creates the user when unknown, so an opt-out can come first —
//          unless the user was erased (a tombstone with $id_hash exists): then nothing is
//          stored and `erased` is true.
// Parameters: $user_id, $consent (bool), $now (epoch seconds); $id_hash (the id's salted
//             hash, null when no salt exists yet, i.e. nobody was ever erased).
// Example: $user_id = 'u42', $consent = false, $now = 1700000000.0, $id_hash = null
OPTIONAL MATCH (t:ErasedUser {id_hash: $id_hash})
OPTIONAL CALL (t) {
  WITH t
  WHERE t IS NULL
  MERGE (u:User {id: $user_id})
  SET u.consent = $consent, u.consent_updated_at = $now
  RETURN u.consent AS stored
}
RETURN coalesce(stored, $consent) AS consent, t IS NOT NULL AS erased
