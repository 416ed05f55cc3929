// Purpose: what serving needs about one user: existence, consent, the active version's
//          embedding (only when tagged with that version) and the items already seen.
// Parameters: $user_id, $version; __PROPERTY__ is the active slot (embedding_a | embedding_b).
// Example: $user_id = 'u42', $version = 'v20261126-233000-1a2b3c'
OPTIONAL MATCH (u:User {id: $user_id})
CALL (u) {
  OPTIONAL MATCH (u)-[:VIEWED|CLICKED|PURCHASED|RATED]->(i:Item)
  RETURN collect(DISTINCT i.id) AS seen
}
RETURN u IS NOT NULL AS exists,
       coalesce(u.consent, true) AS consent,
       CASE WHEN u.__PROPERTY___version = $version THEN u.__PROPERTY__ END AS vec,
       seen
