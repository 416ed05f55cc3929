// Purpose: write one batch of embeddings of a model version into a slot property.
// Parameters: $rows — list of {id, vec}; $version — the model version tag.
//             __LABEL__ and __PROPERTY__ (embedding_a | embedding_b) come from the whitelist.
// Example: $rows = [{id: 'u1', vec: [0.1, 0.2]}], $version = 'v20261126-2330'
UNWIND $rows AS row
MATCH (n:__LABEL__ {id: row.id})
CALL db.create.setNodeVectorProperty(n, '__PROPERTY__', row.vec)
SET n.__PROPERTY___version = $version
RETURN count(*) AS written
