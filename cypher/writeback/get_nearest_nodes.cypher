// Purpose: the ids of the $k nodes nearest to a vector in one vector index (the write-back
//          benchmark's recall check of a rebuilt slot index against exact search).
// Parameters: $name — vector index name; $k — how many; $vec — the query vector.
// Example: $name = 'user_embedding_a', $k = 10, $vec = [0.1, 0.2]
CALL db.index.vector.queryNodes($name, $k, $vec) YIELD node, score
RETURN node.id AS id, score
