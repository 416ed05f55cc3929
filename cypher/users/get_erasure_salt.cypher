// Purpose: the salt of the erased-user hashes, or null when nobody was ever erased.
// Parameters: none.
// Example: (no parameters)
OPTIONAL MATCH (k:ErasureSalt {id: 'erasure'})
RETURN k.value AS salt
