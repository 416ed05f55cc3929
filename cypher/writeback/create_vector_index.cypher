// Purpose: the vector index over one label's embedding slot (cosine similarity), with its
//          HNSW options (graph degree, construction beam, scalar quantization).
// Parameters: $name — index name; $dim — vector dimension; $m — HNSW neighbours per node
//             (1–512); $ef_construction — HNSW construction beam (1–3200); $quantization —
//             store int8-quantized vectors in the index (bool).
//             __LABEL__ and __PROPERTY__ come from the whitelist.
// Example: $name = 'item_embedding_a', $dim = 64, $m = 16, $ef_construction = 100,
//          $quantization = false
CREATE VECTOR INDEX $name IF NOT EXISTS
FOR (n:__LABEL__) ON n.__PROPERTY__
OPTIONS {indexConfig: {
  `vector.dimensions`: $dim,
  `vector.similarity_function`: 'cosine',
  `vector.hnsw.m`: $m,
  `vector.hnsw.ef_construction`: $ef_construction,
  `vector.quantization.enabled`: $quantization
}}
