// Purpose: how much each segment of a version over-indexes on each search query (lift of the
//          share of the segment's searches). Cells with fewer than $min_count searches are
//          left out.
// Parameters: $version, $min_count.
// Example: $version = 'v20261126-233000-1a2b3c', $min_count = 3
MATCH (s:Segment|ArchivedSegment {model_version: $version})<-[:IN_SEGMENT]-(:User)-[r:SEARCHED]->(q:Query)
WITH s, q, sum(coalesce(r.count, 1)) AS n
WITH s, collect({q: q, n: n}) AS cells, sum(n) AS s_total
WITH collect({s: s, cells: cells, s_total: s_total}) AS segs, sum(s_total) AS total
UNWIND segs AS seg
UNWIND seg.cells AS cell
WITH seg.s AS s, cell.q AS q, cell.n AS n, seg.s_total AS s_total, total
WITH q, collect({s: s, n: n, s_total: s_total}) AS per, sum(n) AS q_total, total
UNWIND per AS p
WITH p.s AS s, q, p.n AS n, p.s_total AS s_total, q_total, total
WHERE n >= $min_count
RETURN s.id AS segment, q.id AS id, coalesce(q.text, q.id) AS name, n AS count,
       (toFloat(n) / s_total) / (toFloat(q_total) / total) AS lift
ORDER BY segment, lift DESC, id
