// Purpose: user → query searches, aggregated per pair (endpoints are internal node ids).
// Parameters: $rows — list of [user node id, query node id, count, ts, weight].
// Example: $rows = [[0, 5001, 1, 1700000000.0, 1.0]]
UNWIND $rows AS row
MATCH (u:User) WHERE id(u) = row[0]
MATCH (q:Query) WHERE id(q) = row[1]
MERGE (u)-[r:SEARCHED]->(q)
SET r.count = row[2], r.ts = row[3], r.weight = row[4]
RETURN count(*) AS written
