// Purpose: which of the given salted id hashes belong to erased users (a tombstone exists):
//          loaders and callers filter the ids of erased users out with it.
// Parameters: $hashes (HMAC-SHA256 of user ids with the graph's erasure salt).
// Example: $hashes = ['5d41402abc4b2a76…', '7d793037a0760186…']
UNWIND $hashes AS h
MATCH (t:ErasedUser {id_hash: h})
RETURN collect(t.id_hash) AS erased
