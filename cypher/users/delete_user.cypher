// Purpose: erase a user: the node with every relationship (interactions, searches, segment
//          membership) and embedding, the user's stored feedback events, and the queries only
//          this user ever searched (their text is the user's own data); and record the erasure
//          as a tombstone (:ErasedUser {id_hash}) holding only the salted hash of the id, in
//          the same transaction, so later events cannot re-create the user. Idempotent.
// Parameters: $user_id; $id_hash (HMAC-SHA256 of the id with the graph's erasure salt);
//             $now (epoch seconds).
// Example: $user_id = 'u42', $id_hash = '5d41402abc4b2a76…', $now = 1700000000.0
MERGE (t:ErasedUser {id_hash: $id_hash})
  ON CREATE SET t.erased_at = $now
WITH t
OPTIONAL MATCH (u:User {id: $user_id})
CALL (u) {
  OPTIONAL MATCH (u)-[:SEARCHED]->(q:Query)
  WHERE COUNT { (q)<-[:SEARCHED]-() } = 1
  WITH collect(q) AS own
  FOREACH (q IN own | DETACH DELETE q)
  RETURN size(own) AS queries
}
CALL (u) {
  WITH u
  WHERE u IS NOT NULL
  DETACH DELETE u
  RETURN count(*) AS users
}
CALL () {
  OPTIONAL MATCH (e:Event {user_id: $user_id})
  WITH collect(e) AS events
  FOREACH (e IN events | DETACH DELETE e)
  RETURN size(events) AS events
}
RETURN users, events, queries
