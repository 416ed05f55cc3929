// Purpose: user → item interactions of one type (VIEWED, CLICKED, PURCHASED, RATED), aggregated
//          per pair; SET (not increment) keeps loading idempotent. Endpoints are internal node
//          ids resolved by the loader (see create_interactions).
// Parameters: $rows — list of [user node id, item node id, count, ts, weight]. The
//             relationship type is filled in from graphstore.model.INTERACTIONS only.
// Example: $rows = [[0, 2001, 2, 1700000000.0, 2.0]]
UNWIND $rows AS row
MATCH (u:User) WHERE id(u) = row[0]
MATCH (i:Item) WHERE id(i) = row[1]
MERGE (u)-[r:__TYPE__]->(i)
SET r.count = row[2], r.ts = row[3], r.weight = row[4]
RETURN count(*) AS written
