// Purpose: erase a user: the node with every relationship (interactions, searches, segment
//          membership) and embedding, the user's stored feedback events, and the queries only
//          this user ever searched (their text is the user's own data); and record the erasure
//          as a tombstone (:ErasedUser {id_hash}) holding only the salted hash of the id, in
//          the same transaction, so later events cannot re-create the user. Idempotent.
//          The first clause locks the user before anything is read: MERGE holds the id's
//          unique-index entry (an event write creating the user now waits, or is waited for)
//          and SET takes the node's write lock (an event write adding relationships to it
//          waits, or is waited for); every read below sees what such a write committed.
//          A user the MERGE had to create (`erasure_placeholder`) is deleted again below.
// Parameters: $user_id; $id_hash (HMAC-SHA256 of the id with the graph's erasure salt);
//             $now (epoch seconds).
// Example: $user_id = 'u42', $id_hash = '5d41402abc4b2a76…', $now = 1700000000.0
MERGE (u:User {id: $user_id})
  ON CREATE SET u.erasure_placeholder = true
SET u.erasing_at = $now
WITH u, u.erasure_placeholder IS NULL AS existed
MERGE (t:ErasedUser {id_hash: $id_hash})
  ON CREATE SET t.erased_at = $now
WITH u, existed
CALL (u) {
  OPTIONAL MATCH (u)-[:SEARCHED]->(q:Query)
  WHERE COUNT { (q)<-[:SEARCHED]-() } = 1
  WITH collect(q) AS own
  FOREACH (q IN own | DETACH DELETE q)
  RETURN size(own) AS queries
}
CALL () {
  OPTIONAL MATCH (e:Event {user_id: $user_id})
  WITH collect(e) AS events
  FOREACH (e IN events | DETACH DELETE e)
  RETURN size(events) AS events
}
DETACH DELETE u
RETURN CASE WHEN existed THEN 1 ELSE 0 END AS users, events, queries
