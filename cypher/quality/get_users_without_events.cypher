// Purpose: users with no search, view, click, rating or purchase (they get no embedding worth
//          the name and only popular items).
// Parameters: $limit.
// Example: $limit = 20
MATCH (u:User)
WHERE NOT EXISTS { (u)-[:SEARCHED|VIEWED|CLICKED|PURCHASED|RATED]->() }
WITH collect(u.id) AS ids
RETURN size(ids) AS users, ids[..$limit] AS sample
