// Purpose: the consenting members of one segment, (:User)-[:IN_SEGMENT]->(:Segment {id}),
//          as parallel columns like export/get_user_columns (segments are read, never
//          written, here).
// Parameters: $segment — the segment id.
// Example: $segment = 'seg-v1-3'
MATCH (:Segment|ArchivedSegment {id: $segment})<-[:IN_SEGMENT]-(u:User)
WHERE coalesce(u.consent, true)
WITH DISTINCT u
RETURN collect(id(u)) AS nid, collect(u.id) AS id, collect(coalesce(u.age, -1)) AS age,
       collect(coalesce(u.gender, '')) AS gender, collect(coalesce(u.occupation, '')) AS occupation
