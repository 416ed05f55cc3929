// Purpose: user → item interactions of one type (VIEWED, CLICKED, PURCHASED, RATED), aggregated
//          per pair; SET (not increment) keeps loading idempotent.
// Parameters: $rows — list of {user, target, count, ts, weight}. The relationship type is
//             filled in from graphstore.model.INTERACTIONS only (never from input).
// Example: $rows = [{user: 'u1', target: 'i1', count: 2, ts: 1700000000.0, weight: 2.0}]
UNWIND $rows AS row
MATCH (u:User {id: row.user})
MATCH (i:Item {id: row.target})
MERGE (u)-[r:__TYPE__]->(i)
SET r.count = row.count, r.ts = row.ts, r.weight = row.weight
RETURN count(*) AS written
