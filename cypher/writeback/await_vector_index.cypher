// Purpose: wait until an index is ONLINE (a rebuilt slot index is populated before its
//          version is marked complete); fails after $seconds.
// Parameters: $name — index name; $seconds — how long to wait.
// Example: $name = 'user_embedding_a', $seconds = 600
CALL db.awaitIndex($name, $seconds)
