// Purpose: every :Item has a unique id (also the index used by MERGE and lookups).
// Parameters: none.
CREATE CONSTRAINT item_id_unique IF NOT EXISTS FOR (n:Item) REQUIRE n.id IS UNIQUE
