// Purpose: what serving needs about one user: existence, consent, static features, the active
//          version's embedding (only when tagged with that version), the items already seen,
//          newest first (the recent ones are the DDPG policy's state) with the type of the
//          newest interaction with each and whether it was ever bought, the newest searches
//          (query ids, newest first) and the user's segment of that version
//          (graphstore.segments), if any. The same columns per user as
//          serving/get_user_snapshot_page.
// Parameters: $user_id, $version, $searches (how many searches); __PROPERTY__ is the active
//             slot (embedding_a | embedding_b).
// Example: $user_id = 'u42', $version = 'v20261126-233000-1a2b3c', $searches = 10
OPTIONAL MATCH (u:User {id: $user_id})
CALL (u) {
  MATCH (u)-[r:VIEWED|CLICKED|PURCHASED|RATED]->(i:Item)
  WITH i, r
  ORDER BY coalesce(r.ts, 0.0) DESC
  WITH i, collect(type(r)) AS types, max(coalesce(r.ts, 0.0)) AS ts
  ORDER BY ts DESC, i.id
  RETURN collect(i.id) AS seen, collect(types[0]) AS how,
         collect('PURCHASED' IN types) AS bought
}
CALL (u) {
  MATCH (u)-[s:SEARCHED]->(q:Query)
  WITH q, s
  ORDER BY coalesce(s.ts, 0.0) DESC, q.id
  LIMIT $searches
  RETURN collect(q.id) AS searches
}
CALL (u) {
  OPTIONAL MATCH (u)-[:IN_SEGMENT]->(s:Segment {model_version: $version})
  RETURN s.id AS segment
  LIMIT 1
}
RETURN u IS NOT NULL AS exists,
       coalesce(u.consent, true) AS consent,
       CASE WHEN u.__PROPERTY___version = $version THEN u.__PROPERTY__ END AS vec,
       u.age AS age, u.gender AS gender, u.occupation AS occupation,
       seen, how, bought, searches, segment
