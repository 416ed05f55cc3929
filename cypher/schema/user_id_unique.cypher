// Purpose: every :User has a unique id (also the index used by MERGE and lookups).
// Parameters: none.
CREATE CONSTRAINT user_id_unique IF NOT EXISTS FOR (n:User) REQUIRE n.id IS UNIQUE
