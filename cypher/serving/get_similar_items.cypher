// Purpose: the items nearest to one item by embedding, through the active slot's vector index,
//          keeping only vectors of the given version (a reader never mixes versions).
// Parameters: $item_id, $k, $version, $index (the slot's index name, e.g. 'item_embedding_a');
//             __PROPERTY__ is the active slot.
// Example: $item_id = 'i42', $k = 10, $version = 'v20261126-233000-1a2b3c', $index = 'item_embedding_a'
MATCH (seed:Item {id: $item_id})
WHERE seed.__PROPERTY___version = $version
CALL db.index.vector.queryNodes($index, $k * 4 + 1, seed.__PROPERTY__) YIELD node, score
WITH seed, node, score
WHERE node <> seed AND node.__PROPERTY___version = $version
RETURN node.id AS id, node.title AS title, score
ORDER BY score DESC
LIMIT $k
