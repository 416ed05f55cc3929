// Purpose: record on the model version that its segments are complete (the marker that makes
//          recomputation a no-op), with how the number of segments was chosen.
// Parameters: $version, $k, $criterion ('silhouette' | 'fixed'), $silhouette, $segmented_at.
// Example: $version = 'v1', $k = 6, $criterion = 'silhouette', $silhouette = 0.31
MATCH (m:Model {version: $version})
SET m.segments = $k, m.segment_criterion = $criterion, m.segment_silhouette = $silhouette,
    m.segmented_at = $segmented_at
RETURN m.version AS version
