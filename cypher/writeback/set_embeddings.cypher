// Purpose: write one batch of embeddings of a model version into a slot property.
// Parameters: $ids — list of node ids; $vectors — list of vectors, $vectors[k] for $ids[k]
//             (sent as one 2-D array: see graphstore.writeback); $version — the model
//             version tag. __LABEL__ and __PROPERTY__ (embedding_a | embedding_b) come from
//             the whitelist.
// Example: $ids = ['u1', 'u2'], $vectors = [[0.1, 0.2], [0.3, 0.4]], $version = 'v20261126-2330'
UNWIND range(0, size($ids) - 1) AS k
MATCH (n:__LABEL__ {id: $ids[k]})
CALL db.create.setNodeVectorProperty(n, '__PROPERTY__', $vectors[k])
SET n.__PROPERTY___version = $version
RETURN count(*) AS written
