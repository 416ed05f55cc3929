// Purpose: the items with the most interactions (the non-personalized fallback), optionally
//          only items in one category or its subcategories (then only those items are read).
//          The score is the item's count of CLICKED, PURCHASED and RATED relationships (one
//          per user and type, however often repeated), read from the degree store: no
//          relationship is visited.
// Parameters: $k, $category (a category id, or null for all items).
// Example: $k = 10, $category = null
CALL () {
  MATCH (i:Item)
  WHERE $category IS NULL
  RETURN i
  UNION ALL
  MATCH (:Category {id: $category})<-[:SUBCATEGORY_OF*0..]-(:Category)<-[:IN_CATEGORY]-(i:Item)
  RETURN DISTINCT i
}
WITH i, COUNT { (i)<-[:CLICKED|PURCHASED|RATED]-() } AS score
WHERE score > 0
ORDER BY score DESC, i.id
LIMIT $k
RETURN i.id AS id, i.title AS title, toFloat(score) AS score
