// Purpose: make a complete version the active one, atomically (one transaction: the old
//          active version is retired in the same write). Segments follow: `:Segment` means
//          "segment of the active version", so the segments of every other version become
//          `:ArchivedSegment` and the new version's complete segments (its `segments` marker
//          is set) become `:Segment`, in this same transaction. Activating the active version
//          changes nothing.
// Parameters: $version, $activated_at.
// Example: $version = 'v1', $activated_at = 1700000000.0
MATCH (m:Model {version: $version, status: 'complete'})
OPTIONAL MATCH (old:Model {active: true})
WHERE old <> m
SET old.active = false
SET m.active = true, m.activated_at = $activated_at
WITH DISTINCT m
CALL (m) {
  MATCH (s:Segment)
  WHERE s.model_version <> m.version
  REMOVE s:Segment
  SET s:ArchivedSegment
  RETURN count(s) AS archived
}
CALL (m) {
  MATCH (s:ArchivedSegment {model_version: m.version})
  WHERE m.segments IS NOT NULL
  REMOVE s:ArchivedSegment
  SET s:Segment
  RETURN count(s) AS promoted
}
RETURN m.version AS version, m.slot AS slot
