// Purpose: why each recommended item fits the user, from the graph, in one read for the K
//          items: the user's search that led to it, a search sharing a term with it, an item
//          of the same category the user interacted with, how many users of the user's segment
//          (of model version $version) bought it, and how many users bought it (from the
//          degree store: no relationship is visited, however popular the item).
// Parameters: $user_id, $item_ids (the recommended items), $version.
// Example: $user_id = 'u42', $item_ids = ['i1', 'i7'], $version = 'v20261126-233000-1a2b3c'

UNWIND $item_ids AS item_id
MATCH (i:Item {id: item_id})
OPTIONAL MATCH (u:User {id: $user_id})
CALL (u, i) {
  OPTIONAL MATCH (u)-[s:SEARCHED]->(q:Query)-[:LED_TO]->(i)
  WITH q, s
  ORDER BY s.ts DESC
  LIMIT 1
  RETURN coalesce(q.text, q.id) AS led_query
}
CALL (u, i) {
  OPTIONAL MATCH (u)-[s:SEARCHED]->(q:Query)-[:HAS_TERM]->(t:Term)<-[:HAS_TERM]-(i)
  WITH q, t, s
  ORDER BY s.ts DESC
  LIMIT 1
  RETURN coalesce(q.text, q.id) AS term_query, t.id AS term
}
CALL (u, i) {
  OPTIONAL MATCH (u)-[r:PURCHASED|CLICKED|VIEWED|RATED]->(j:Item)-[:IN_CATEGORY]->(c:Category)
                 <-[:IN_CATEGORY]-(i)
  WHERE j <> i
  WITH j, c, r
  ORDER BY r.ts DESC
  LIMIT 1
  RETURN j.id AS similar_id, j.title AS similar_title, type(r) AS similar_how,
         coalesce(c.name, c.id) AS category
}
CALL (u, i) {
  OPTIONAL MATCH (u)-[:IN_SEGMENT]->(s:Segment {model_version: $version})
  WITH s
  LIMIT 1
  RETURN s.name AS segment,
         CASE WHEN s IS NULL THEN 0
              ELSE COUNT { (i)<-[:PURCHASED]-(o:User)-[:IN_SEGMENT]->(s) WHERE o <> u } END
           AS segment_buyers
}
CALL (i) {
  RETURN COUNT { (i)<-[:PURCHASED]-() } AS purchases
}
RETURN item_id, led_query, term_query, term, similar_id, similar_title, similar_how, category,
       segment, segment_buyers, purchases
