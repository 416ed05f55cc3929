// Purpose: every user embedding of one model version (segmentation reads them when the run's
//          embeddings file is not at hand).
// Parameters: $version; __PROPERTY__ is that version's slot property (embedding_a | embedding_b).
// Example: $version = 'v20261126-233000-1a2b3c'
MATCH (u:User)
WHERE u.__PROPERTY___version = $version
RETURN u.id AS id, u.__PROPERTY__ AS vec
ORDER BY id
