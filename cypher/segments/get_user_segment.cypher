// Purpose: the segment of one user in the active model version, with its membership score.
// Parameters: $user_id.
// Example: $user_id = 'u42'
MATCH (m:Model {active: true})
MATCH (u:User {id: $user_id})-[r:IN_SEGMENT]->(s:Segment {model_version: m.version})
RETURN u.id AS user, s.id AS segment, s.name AS name, r.score AS score, m.version AS version
