// Purpose: every :Query has a unique id (also the index used by MERGE and lookups).
// Parameters: none.
CREATE CONSTRAINT query_id_unique IF NOT EXISTS FOR (n:Query) REQUIRE n.id IS UNIQUE
