// Purpose: an existing vector index's dimension and HNSW options (to recreate it when they
//          differ from the ones asked for) and its state.
// Parameters: $name — index name.
// Example: $name = 'item_embedding_a'
SHOW VECTOR INDEXES YIELD name, options, state
WHERE name = $name
RETURN options.indexConfig.`vector.dimensions` AS dim,
       options.indexConfig.`vector.hnsw.m` AS m,
       options.indexConfig.`vector.hnsw.ef_construction` AS ef_construction,
       options.indexConfig.`vector.quantization.enabled` AS quantization,
       state
