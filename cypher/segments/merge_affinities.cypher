// Purpose: link segments to the categories or terms they over-index on (while being written
//          a version's segments are :ArchivedSegment).
// Parameters: $rows — list of {segment, target, lift, count}; __LABEL__ is Category or Term.
// Example: $rows = [{segment: 'v1:0', target: 'c0.1', lift: 2.7, count: 130}]
UNWIND $rows AS row
MATCH (s:ArchivedSegment {id: row.segment})
MATCH (t:__LABEL__ {id: row.target})
MERGE (s)-[a:AFFINITY]->(t)
SET a.lift = row.lift, a.count = row.count
RETURN count(a) AS written
