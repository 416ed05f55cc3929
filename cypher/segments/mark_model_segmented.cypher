// Purpose: record on the model version that its segments are complete (the marker that makes
//          recomputation a no-op), with how the number of segments was chosen; when the
//          version is already active its segments become `:Segment` in the same transaction.
// Parameters: $version, $k, $criterion ('eigengap' | 'silhouette' | 'fixed'), $silhouette,
//             $segmented_at.
// Example: $version = 'v1', $k = 6, $criterion = 'eigengap', $silhouette = 0.31
MATCH (m:Model {version: $version})
SET m.segments = $k, m.segment_criterion = $criterion, m.segment_silhouette = $silhouette,
    m.segmented_at = $segmented_at
WITH m
CALL (m) {
  MATCH (s:ArchivedSegment {model_version: m.version})
  WHERE m.active = true
  REMOVE s:ArchivedSegment
  SET s:Segment
  RETURN count(s) AS promoted
}
RETURN m.version AS version, promoted
