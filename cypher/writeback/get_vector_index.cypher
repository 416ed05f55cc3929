// Purpose: an existing vector index's dimension (to recreate it when the dimension changes).
// Parameters: $name — index name.
// Example: $name = 'item_embedding_a'
SHOW VECTOR INDEXES YIELD name, options
WHERE name = $name
RETURN options.indexConfig.`vector.dimensions` AS dim
