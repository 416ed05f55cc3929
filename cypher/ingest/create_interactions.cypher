// Purpose: user → item interactions of one type into a graph that has none of that type yet
//          (the loader's fast path: CREATE skips MERGE's existence check). Rows are aggregated
//          per pair (one row per user–item), so no pair is created twice. Endpoints are
//          internal node ids (from the loader's node writes): an id seek per endpoint, no
//          index seek; the label check keeps a stale id from matching another kind of node.
// Parameters: $rows — list of [user node id, item node id, count, ts, weight]. The
//             relationship type is filled in from graphstore.model.INTERACTIONS only.
// Example: $rows = [[0, 2001, 2, 1700000000.0, 2.0]]
UNWIND $rows AS row
MATCH (u:User) WHERE id(u) = row[0]
MATCH (i:Item) WHERE id(i) = row[1]
CREATE (u)-[:__TYPE__ {count: row[2], ts: row[3], weight: row[4]}]->(i)
RETURN count(*) AS written
