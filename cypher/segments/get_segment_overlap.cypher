// Purpose: how segments of two model versions overlap: users shared by each pair of
//          segments and the Jaccard index of their memberships (1 = the same users).
// Parameters: $from_version, $to_version.
// Example: $from_version = 'v20261126-233000-1a2b3c', $to_version = 'v20261127-013000-9f8e7d'
MATCH (a:Segment|ArchivedSegment {model_version: $from_version})
MATCH (b:Segment|ArchivedSegment {model_version: $to_version})
CALL (a, b) {
  MATCH (a)<-[:IN_SEGMENT]-(u:User)-[:IN_SEGMENT]->(b)
  RETURN count(u) AS shared
}
WITH a, b, shared
WHERE shared > 0
RETURN a.id AS from_segment, a.name AS from_name, b.id AS to_segment, b.name AS to_name,
       shared, round(toFloat(shared) / (a.size + b.size - shared), 4) AS jaccard
ORDER BY jaccard DESC, from_segment, to_segment
