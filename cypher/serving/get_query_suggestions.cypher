// Purpose: queries matching a user's interests: the nearest queries to the user's vector
//          through the active slot's query vector index, only vectors of the given version.
// Parameters: $vec (the user's vector), $k, $version, $index (e.g. 'query_embedding_a');
//             __PROPERTY__ is the active slot.
// Example: $vec = [0.1, …], $k = 10, $version = 'v20261126-233000-1a2b3c',
//          $index = 'query_embedding_a'
CALL db.index.vector.queryNodes($index, $k * 4, $vec) YIELD node, score
WITH node, score
WHERE node.__PROPERTY___version = $version
RETURN node.id AS id, coalesce(node.text, node.id) AS text, score
ORDER BY score DESC
LIMIT $k
