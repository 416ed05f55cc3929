// Purpose: how much each segment of a version over-indexes on each item (lift of the share of
//          the segment's clicks, ratings and purchases). Cells with fewer than $min_count
//          events are left out.
// Parameters: $version, $min_count.
// Example: $version = 'v20261126-233000-1a2b3c', $min_count = 3
MATCH (s:Segment|ArchivedSegment {model_version: $version})<-[:IN_SEGMENT]-(:User)-[r:CLICKED|PURCHASED|RATED]->(i:Item)
WITH s, i, sum(coalesce(r.count, 1)) AS n
WITH s, collect({i: i, n: n}) AS cells, sum(n) AS s_total
WITH collect({s: s, cells: cells, s_total: s_total}) AS segs, sum(s_total) AS total
UNWIND segs AS seg
UNWIND seg.cells AS cell
WITH seg.s AS s, cell.i AS i, cell.n AS n, seg.s_total AS s_total, total
WITH i, collect({s: s, n: n, s_total: s_total}) AS per, sum(n) AS i_total, total
UNWIND per AS p
WITH p.s AS s, i, p.n AS n, p.s_total AS s_total, i_total, total
WHERE n >= $min_count
RETURN s.id AS segment, i.id AS id, coalesce(i.title, i.id) AS name, n AS count,
       (toFloat(n) / s_total) / (toFloat(i_total) / total) AS lift
ORDER BY segment, lift DESC, id
