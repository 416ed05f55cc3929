// Purpose: the items most interacted with by the members of one segment (the fallback for a
//          user without an embedding who belongs to a segment).
// Parameters: $segment (segment id), $k.
// Example: $segment = 'v20261126-233000-1a2b3c:3', $k = 100
MATCH (:Segment|ArchivedSegment {id: $segment})<-[:IN_SEGMENT]-(o:User)-[r:CLICKED|PURCHASED|RATED]->(i:Item)
WITH i, sum(coalesce(r.count, 1)) AS score
ORDER BY score DESC, i.id
LIMIT $k
RETURN i.id AS id, i.title AS title, toFloat(score) AS score
