// Purpose: every :ArchivedSegment (a segment of a version that is not active) has a unique id,
//          like :Segment (ids are "<version>:<n>", so unique across both labels too).
// Parameters: none.
CREATE CONSTRAINT archived_segment_id_unique IF NOT EXISTS
FOR (n:ArchivedSegment) REQUIRE n.id IS UNIQUE
