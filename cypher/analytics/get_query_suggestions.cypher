// Purpose: search queries to suggest to a user: the queries whose active-model embedding is
//          nearest to the user's (query vector index of the active slot), excluding queries
//          the user has already searched.
// Parameters: $user_id, $k.
// Example: $user_id = 'u42', $k = 5
MATCH (m:Model {active: true})
MATCH (u:User {id: $user_id})
WHERE u['embedding_' + m.slot + '_version'] = m.version
CALL db.index.vector.queryNodes('query_embedding_' + m.slot, $k * 4 + 20, u['embedding_' + m.slot])
YIELD node AS query, score
WHERE query['embedding_' + m.slot + '_version'] = m.version
  AND NOT EXISTS { (u)-[:SEARCHED]->(query) }
RETURN query.id AS id, query.text AS text, round(score, 4) AS score
ORDER BY score DESC, id
LIMIT $k
