// Purpose: every user's segment number and membership score in one model version (plots,
//          comparison with known segments).
// Parameters: $version.
// Example: $version = 'v20261126-233000-1a2b3c'
MATCH (u:User)-[r:IN_SEGMENT]->(s:Segment|ArchivedSegment {model_version: $version})
RETURN u.id AS user, s.n AS n, s.id AS segment, r.score AS score
ORDER BY user
