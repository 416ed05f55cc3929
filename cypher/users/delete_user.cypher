// Purpose: erase a user: the node with every relationship (interactions, searches, segment
//          membership) and embedding, the user's stored feedback events, and the queries only
//          this user ever searched (their text is the user's own data).
// Parameters: $user_id.
// Example: $user_id = 'u42'
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
