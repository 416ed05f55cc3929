// Purpose: remove segments (active or archived) whose model version is gone or superseded
//          (its embedding slot has been handed to a newer version), so segments live exactly
//          as long as their version can still be served or rolled back to.
// Parameters: none.
// Example: (no parameters)
MATCH (s:Segment|ArchivedSegment)
OPTIONAL MATCH (m:Model {version: s.model_version})
WITH s, m
WHERE m IS NULL OR m.status = 'superseded'
DETACH DELETE s
RETURN count(s) AS deleted
