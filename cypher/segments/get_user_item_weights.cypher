// Purpose: every user → item interaction that segments are profiled on (clicks, ratings and
//          purchases, as in the lift statements), one row per relationship, not summed here:
//          the edges of the users' neighbourhood vectors (the client sums a pair's rows, so the
//          server holds no per-pair table; at 1M users a grouped sum ran out of heap).
// Parameters: none.
// Example: (no parameters)
MATCH (u:User)-[r:CLICKED|PURCHASED|RATED]->(i:Item)
RETURN u.id AS user, i.id AS item, coalesce(r.count, 1) AS weight
