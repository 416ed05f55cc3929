// Purpose: every :Term has a unique id (also the index used by MERGE and lookups).
// Parameters: none.
CREATE CONSTRAINT term_id_unique IF NOT EXISTS FOR (n:Term) REQUIRE n.id IS UNIQUE
