// Purpose: the salt of the erased-user hashes exists once: (:ErasureSalt {id}) is unique, so
//          two first erasures at the same time agree on one salt.
// Parameters: none.
CREATE CONSTRAINT erasure_salt_id_unique IF NOT EXISTS
FOR (n:ErasureSalt) REQUIRE n.id IS UNIQUE
