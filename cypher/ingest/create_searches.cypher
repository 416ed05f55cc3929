// Purpose: user → query searches into a graph that has no SEARCHED relationship yet (the
//          loader's fast path; rows are aggregated per pair).
// Parameters: $rows — list of {user, target (query id), count, ts, weight}.
// Example: $rows = [{user: 'u1', target: 'game race', count: 1, ts: 1700000000.0, weight: 1.0}]
UNWIND $rows AS row
MATCH (u:User {id: row.user})
MATCH (q:Query {id: row.target})
CREATE (u)-[:SEARCHED {count: row.count, ts: row.ts, weight: row.weight}]->(q)
RETURN count(*) AS written
