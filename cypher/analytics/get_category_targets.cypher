// Purpose: users to target for a category: the users whose active-model embedding is nearest
//          to the mean embedding of the category's items (its subcategories included) and who
//          have not bought in it yet, with their segment in the active version. The vector
//          index is asked for 20·k + 200 candidates: a good model puts the category's buyers
//          nearest its centre, and they are filtered out after the index query.
// Parameters: $category_id, $k.
// Example: $category_id = 'c0.1', $k = 20
MATCH (m:Model {active: true})
MATCH (c:Category {id: $category_id})<-[:SUBCATEGORY_OF*0..3]-(:Category)<-[:IN_CATEGORY]-(i:Item)
WHERE i['embedding_' + m.slot + '_version'] = m.version
WITH m, c, collect(DISTINCT i['embedding_' + m.slot]) AS vecs
WHERE size(vecs) > 0
WITH m, c, [d IN range(0, size(vecs[0]) - 1) |
            reduce(s = 0.0, v IN vecs | s + v[d]) / size(vecs)] AS centre
CALL db.index.vector.queryNodes('user_embedding_' + m.slot, $k * 20 + 200, centre)
YIELD node AS u, score
WHERE u['embedding_' + m.slot + '_version'] = m.version
  AND NOT EXISTS {
    (u)-[:PURCHASED]->(:Item)-[:IN_CATEGORY]->(:Category)-[:SUBCATEGORY_OF*0..3]->(c)
  }
OPTIONAL MATCH (u)-[:IN_SEGMENT]->(s:Segment {model_version: m.version})
RETURN u.id AS user, round(score, 4) AS score, s.name AS segment
ORDER BY score DESC, user
LIMIT $k
