// Purpose: the vector index over one label's embedding slot (cosine similarity).
// Parameters: $name — index name; $dim — vector dimension.
//             __LABEL__ and __PROPERTY__ come from the whitelist.
// Example: $name = 'item_embedding_a', $dim = 64
CREATE VECTOR INDEX $name IF NOT EXISTS
FOR (n:__LABEL__) ON n.__PROPERTY__
OPTIONS {indexConfig: {`vector.dimensions`: $dim, `vector.similarity_function`: 'cosine'}}
