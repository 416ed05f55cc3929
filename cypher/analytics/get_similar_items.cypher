// Purpose: the items nearest to one item in the active model (item vector index of the active
//          slot), with the category they share. Asks the index for 4k + 1 candidates (HNSW
//          is approximate: k + 1 found ~0.96 of the true top 10 on embedding-like vectors,
//          4k + 1 all of them; docs/benchmarks.md, write-back). Runs as is in Neo4j Browser.
// Parameters: $item_id, $k.
// Example: $item_id = 'i42', $k = 10
MATCH (m:Model {active: true})
MATCH (seed:Item {id: $item_id})
WHERE seed['embedding_' + m.slot + '_version'] = m.version
CALL db.index.vector.queryNodes('item_embedding_' + m.slot, $k * 4 + 1, seed['embedding_' + m.slot])
YIELD node AS item, score
WHERE item <> seed AND item['embedding_' + m.slot + '_version'] = m.version
OPTIONAL MATCH (item)-[:IN_CATEGORY]->(c:Category)
RETURN item.id AS id, item.title AS title, round(score, 4) AS score,
       collect(c.name) AS categories
ORDER BY score DESC, id
LIMIT $k
