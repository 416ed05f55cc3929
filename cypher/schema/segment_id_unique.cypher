// Purpose: every :Segment has a unique id (also the index used by MERGE and lookups).
// Parameters: none.
CREATE CONSTRAINT segment_id_unique IF NOT EXISTS FOR (n:Segment) REQUIRE n.id IS UNIQUE
