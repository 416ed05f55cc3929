// Purpose: a segment as a picture for Neo4j Browser: the segment, its AFFINITY categories and
//          terms, and its $members most typical members (highest membership score).
// Parameters: $segment_id, $members.
// Example: $segment_id = 'v20261126-233000-1a2b3c:0', $members = 15
MATCH (s:Segment|ArchivedSegment {id: $segment_id})
CALL (s) {
  MATCH p = (s)-[:AFFINITY]->()
  RETURN p
  UNION
  MATCH p = (:User)-[r:IN_SEGMENT]->(s)
  WITH p, r ORDER BY r.score DESC
  LIMIT $members
  RETURN p
}
RETURN p
