// Purpose: user → item interactions of one type into a graph that has none of that type yet
//          (the loader's fast path: CREATE skips MERGE's existence check). Rows are aggregated
//          per pair (one row per user–item), so no pair is created twice.
// Parameters: $rows — list of {user, target, count, ts, weight}. The relationship type is
//             filled in from graphstore.model.INTERACTIONS only (never from input).
// Example: $rows = [{user: 'u1', target: 'i1', count: 2, ts: 1700000000.0, weight: 2.0}]
UNWIND $rows AS row
MATCH (u:User {id: row.user})
MATCH (i:Item {id: row.target})
CREATE (u)-[:__TYPE__ {count: row.count, ts: row.ts, weight: row.weight}]->(i)
RETURN count(*) AS written
