// Purpose: every item embedding of one model version (the users' neighbourhood vectors for
//          segmentation are built from them).
// Parameters: $version; __PROPERTY__ is that version's slot property (embedding_a | embedding_b).
// Example: $version = 'v20261126-233000-1a2b3c'
MATCH (i:Item)
WHERE i.__PROPERTY___version = $version
RETURN i.id AS id, i.__PROPERTY__ AS vec
ORDER BY id
