// Purpose: items for a user from the active model through the item vector index of the active
//          slot (cosine similarity to the user's embedding), leaving out items the user has
//          already interacted with. Runs as is in Neo4j Browser (the slot is resolved here).
// Parameters: $user_id, $k.
// Example: $user_id = 'u42', $k = 10
MATCH (m:Model {active: true})
MATCH (u:User {id: $user_id})
WHERE u['embedding_' + m.slot + '_version'] = m.version
CALL db.index.vector.queryNodes('item_embedding_' + m.slot, $k * 4 + 20, u['embedding_' + m.slot])
YIELD node AS item, score
WHERE item['embedding_' + m.slot + '_version'] = m.version
  AND NOT EXISTS { (u)-[:VIEWED|CLICKED|PURCHASED|RATED]->(item) }
RETURN item.id AS id, item.title AS title, round(score, 4) AS score
ORDER BY score DESC, id
LIMIT $k
