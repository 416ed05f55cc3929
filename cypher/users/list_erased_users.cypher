// Purpose: every erasure tombstone (salted id hashes only, never ids) with its time, for
//          scrubbing erased users out of training artifacts on disk.
// Parameters: none.
// Example: (no parameters)
MATCH (t:ErasedUser)
RETURN collect(t.id_hash) AS hashes, max(t.erased_at) AS latest
