// Purpose: one relationship's time and weight by its endpoints' ids — the one-query-per-edge
//          baseline of bench/bench_export.py (and spot checks); exports never use it.
// Parameters: $s — source node id; $t — target node id. __SRC__, __TYPE__, __DST__ are filled
//             from graphstore.model.EDGE_TYPES.
// Example: __SRC__ = User, __TYPE__ = CLICKED, __DST__ = Item, $s = 'u1', $t = 'i1'
MATCH (s:__SRC__ {id: $s})-[r:__TYPE__]->(t:__DST__ {id: $t})
RETURN s.id AS s, t.id AS t, r.ts AS ts, coalesce(r.weight, r.count, 1) AS w
