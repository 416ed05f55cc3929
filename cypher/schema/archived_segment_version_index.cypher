// Purpose: find an archived version's segments fast (activation and the segment statements
//          match (:ArchivedSegment {model_version: $version})).
// Parameters: none.
CREATE INDEX archived_segment_version_index IF NOT EXISTS
FOR (n:ArchivedSegment) ON (n.model_version)
