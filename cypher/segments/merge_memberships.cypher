// Purpose: one batch of users' memberships in their segment, with the membership score
//          (while a version's segments are written they are :ArchivedSegment).
// Parameters: $rows — list of {user, segment, score} (user id, segment id, margin in [0, 1]).
// Example: $rows = [{user: 'u1', segment: 'v1:3', score: 0.42}]
UNWIND $rows AS row
MATCH (u:User {id: row.user})
MATCH (s:ArchivedSegment {id: row.segment})
MERGE (u)-[r:IN_SEGMENT]->(s)
SET r.score = row.score
RETURN count(r) AS written
