// Purpose: where the users of each segment of one model version went in another: for every
//          origin segment, the destination segments with the number and share of its users
//          (users missing from either version are counted as 'new' / 'gone').
// Parameters: $from_version, $to_version.
// Example: $from_version = 'v20261126-233000-1a2b3c', $to_version = 'v20261127-013000-9f8e7d'
MATCH (u:User)-[:IN_SEGMENT]->(s:Segment|ArchivedSegment)
WHERE s.model_version IN [$from_version, $to_version]
WITH u,
     head([x IN collect(s) WHERE x.model_version = $from_version]) AS a,
     head([x IN collect(s) WHERE x.model_version = $to_version]) AS b
WITH coalesce(a.id, 'new') AS from_segment, coalesce(a.name, 'new users') AS from_name,
     coalesce(b.id, 'gone') AS to_segment, coalesce(b.name, 'not segmented') AS to_name,
     count(u) AS users
WITH from_segment, collect({to: to_segment, name: to_name, users: users}) AS flows,
     sum(users) AS origin_size, from_name
UNWIND flows AS f
RETURN from_segment, from_name, f.to AS to_segment, f.name AS to_name, f.users AS users,
       round(toFloat(f.users) / origin_size, 4) AS share
ORDER BY from_segment, users DESC, to_segment
