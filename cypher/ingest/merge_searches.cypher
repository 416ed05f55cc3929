// Purpose: user → query searches, aggregated per pair.
// Parameters: $rows — list of {user, target (query id), count, ts, weight}.
// Example: $rows = [{user: 'u1', target: 'game race', count: 1, ts: 1700000000.0, weight: 1.0}]
UNWIND $rows AS row
MATCH (u:User {id: row.user})
MATCH (q:Query {id: row.target})
MERGE (u)-[r:SEARCHED]->(q)
SET r.count = row.count, r.ts = row.ts, r.weight = row.weight
RETURN count(*) AS written
