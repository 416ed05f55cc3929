// Purpose: how much each segment of a version over-indexes on each search term: lift = (share
//          of the segment's searched terms that are this term) / (share among all members).
//          Cells with fewer than $min_count searches are left out.
// Parameters: $version, $min_count.
// Example: $version = 'v20261126-233000-1a2b3c', $min_count = 3
MATCH (s:Segment|ArchivedSegment {model_version: $version})<-[:IN_SEGMENT]-(:User)-[r:SEARCHED]->(:Query)-[:HAS_TERM]->(t:Term)
WITH s, t, sum(coalesce(r.count, 1)) AS n
WITH s, collect({t: t, n: n}) AS cells, sum(n) AS s_total
WITH collect({s: s, cells: cells, s_total: s_total}) AS segs, sum(s_total) AS total
UNWIND segs AS seg
UNWIND seg.cells AS cell
WITH seg.s AS s, cell.t AS t, cell.n AS n, seg.s_total AS s_total, total
WITH t, collect({s: s, n: n, s_total: s_total}) AS per, sum(n) AS t_total, total
UNWIND per AS p
WITH p.s AS s, t, p.n AS n, p.s_total AS s_total, t_total, total
WHERE n >= $min_count
RETURN s.id AS segment, t.id AS id, t.id AS name, n AS count,
       (toFloat(n) / s_total) / (toFloat(t_total) / total) AS lift
ORDER BY segment, lift DESC, id
