// Purpose: how active users are: the distribution of interactions per user (searches, views,
//          clicks, ratings, purchases together) as percentiles.
// Parameters: none.
// Example: (no parameters)
MATCH (u:User)
CALL (u) {
  OPTIONAL MATCH (u)-[r:SEARCHED|VIEWED|CLICKED|PURCHASED|RATED]->()
  RETURN sum(CASE WHEN r IS NULL THEN 0 ELSE coalesce(r.count, 1) END) AS events
}
RETURN count(u) AS users, round(avg(events), 2) AS mean,
       percentileDisc(events, 0.5) AS median, percentileDisc(events, 0.9) AS p90,
       max(events) AS max
