// Purpose: per segment of a version: members, clicks and purchases of its members, and how
//          many members bought anything (the inputs of click_rate and purchase_rate).
// Parameters: $version.
// Example: $version = 'v20261126-233000-1a2b3c'
MATCH (s:Segment|ArchivedSegment {model_version: $version})
CALL (s) {
  MATCH (s)<-[:IN_SEGMENT]-(u:User)
  OPTIONAL MATCH (u)-[c:CLICKED]->(:Item)
  WITH u, sum(CASE WHEN c IS NULL THEN 0 ELSE coalesce(c.count, 1) END) AS clicks
  OPTIONAL MATCH (u)-[p:PURCHASED]->(:Item)
  WITH u, clicks, sum(CASE WHEN p IS NULL THEN 0 ELSE coalesce(p.count, 1) END) AS purchases
  RETURN count(u) AS members, sum(clicks) AS clicks, sum(purchases) AS purchases,
         sum(CASE WHEN purchases > 0 THEN 1 ELSE 0 END) AS buyers
}
RETURN s.id AS segment, s.n AS n, members, clicks, purchases, buyers
ORDER BY n
