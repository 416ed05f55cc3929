// Purpose: what serving needs about one user: existence, consent, static features, the active
//          version's embedding (only when tagged with that version) and the items already seen,
//          newest first (the recent ones are the DDPG policy's state), and the user's segment
//          of that version (graphstore.segments), if any.
// Parameters: $user_id, $version; __PROPERTY__ is the active slot (embedding_a | embedding_b).
// Example: $user_id = 'u42', $version = 'v20261126-233000-1a2b3c'
OPTIONAL MATCH (u:User {id: $user_id})
CALL (u) {
  OPTIONAL MATCH (u)-[r:VIEWED|CLICKED|PURCHASED|RATED]->(i:Item)
  WITH i, coalesce(max(r.ts), 0.0) AS ts
  ORDER BY ts DESC, i.id
  RETURN collect(i.id) AS seen
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
       seen, segment
