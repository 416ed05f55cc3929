// Purpose: user → query searches into a graph that has no SEARCHED relationship yet (the
//          loader's fast path; rows are aggregated per pair; endpoints are internal node ids).
// Parameters: $rows — list of [user node id, query node id, count, ts, weight].
// Example: $rows = [[0, 5001, 1, 1700000000.0, 1.0]]
UNWIND $rows AS row
MATCH (u:User) WHERE id(u) = row[0]
MATCH (q:Query) WHERE id(q) = row[1]
CREATE (u)-[:SEARCHED {count: row[2], ts: row[3], weight: row[4]}]->(q)
RETURN count(*) AS written
