// Purpose: every user → item interaction that segments are profiled on (clicks, ratings and
//          purchases, as in the lift statements), summed per pair: the edges of the users'
//          neighbourhood vectors.
// Parameters: none.
// Example: (no parameters)
MATCH (u:User)-[r:CLICKED|PURCHASED|RATED]->(i:Item)
RETURN u.id AS user, i.id AS item, sum(coalesce(r.count, 1)) AS weight
