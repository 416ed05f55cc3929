// Purpose: remove one model version's segments (active or archived) with their IN_SEGMENT and
//          AFFINITY relationships (a half-written attempt before recomputing, or `--force`).
// Parameters: $version.
// Example: $version = 'v20261126-233000-1a2b3c'
MATCH (s:Segment|ArchivedSegment {model_version: $version})
DETACH DELETE s
RETURN count(s) AS deleted
