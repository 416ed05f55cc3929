// Purpose: create the segment nodes of a model version (id "<version>:<n>"), as
//          `:ArchivedSegment`: they become `:Segment` only once complete and the version is
//          active (segments/mark_model_segmented or models/activate_model).
// Parameters: $version; $segments — list of {id, n, size}; $created_at (epoch seconds).
// Example: $version = 'v1', $segments = [{id: 'v1:0', n: 0, size: 412}], $created_at = 1.7e9
UNWIND $segments AS seg
MERGE (s:ArchivedSegment {id: seg.id})
SET s.model_version = $version, s.n = seg.n, s.size = seg.size, s.created_at = $created_at,
    s.name = coalesce(s.name, 'Segment ' + toString(seg.n))
RETURN count(s) AS created
