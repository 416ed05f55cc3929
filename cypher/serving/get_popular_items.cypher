// Purpose: the most interacted-with items (the non-personalized fallback).
// Parameters: $k.
// Example: $k = 10
MATCH (i:Item)<-[r:CLICKED|PURCHASED|RATED]-()
WITH i, sum(coalesce(r.count, 1)) AS score
ORDER BY score DESC, i.id
LIMIT $k
RETURN i.id AS id, i.title AS title, toFloat(score) AS score
