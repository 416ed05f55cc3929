// Purpose: every :Category has a unique id (also the index used by MERGE and lookups).
// Parameters: none.
CREATE CONSTRAINT category_id_unique IF NOT EXISTS FOR (n:Category) REQUIRE n.id IS UNIQUE
