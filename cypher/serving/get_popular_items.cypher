// Purpose: the most interacted-with items (the non-personalized fallback), optionally only
//          items in one category or its subcategories.
// Parameters: $k, $category (a category id, or null for all items).
// Example: $k = 10, $category = null
MATCH (i:Item)<-[r:CLICKED|PURCHASED|RATED]-()
WHERE $category IS NULL
   OR EXISTS { (i)-[:IN_CATEGORY]->(:Category)-[:SUBCATEGORY_OF*0..]->(:Category {id: $category}) }
WITH i, sum(coalesce(r.count, 1)) AS score
ORDER BY score DESC, i.id
LIMIT $k
RETURN i.id AS id, i.title AS title, toFloat(score) AS score
