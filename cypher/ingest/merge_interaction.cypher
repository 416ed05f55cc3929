// Purpose: ONE user → item interaction by the endpoints' ids — the naive loader (one row per
//          transaction, an index seek per endpoint) that bench/bench_ingest.py measures the
//          batched loader against. Not used by the product's loader.
// Parameters: $user, $target (user and item ids), $count, $ts, $weight. The relationship
//             type is filled in from graphstore.model.INTERACTIONS only.
// Example: $user = 'u1', $target = 'i1', $count = 2, $ts = 1700000000.0, $weight = 2.0
MATCH (u:User {id: $user})
MATCH (i:Item {id: $target})
MERGE (u)-[r:__TYPE__]->(i)
SET r.count = $count, r.ts = $ts, r.weight = $weight
RETURN count(*) AS written
