// Purpose: one tombstone per erased user: (:ErasedUser {id_hash}) is unique (also the index
//          that the event and consent statements look erased users up by).
// Parameters: none.
CREATE CONSTRAINT erased_user_hash_unique IF NOT EXISTS
FOR (n:ErasedUser) REQUIRE n.id_hash IS UNIQUE
