// Purpose: the relationships of one (source label, type, target label) leaving a batch of
//          source nodes, as parallel columns (one record per batch, not per edge): internal
//          source and target ids, time and weight. Optionally only relationships whose ts
//          lies in [$since, $until) (a null bound is open; a relationship without ts is then
//          left out).
// Parameters: $nids — internal ids of the source nodes; $missing — the time to return for a
//             relationship without ts (NaN); $since, $until — time window bounds or null.
//             __SRC__, __TYPE__ are filled from graphstore.model.EDGE_TYPES. The target's
//             label is not checked (a node read per edge): the caller keeps only targets
//             among the exported nodes of the edge type's target label.
// Example: __SRC__ = User, __TYPE__ = CLICKED, $nids = [0, 1, 2],
//          $missing = NaN, $since = 1700000000.0, $until = null
UNWIND $nids AS nid
MATCH (s:__SRC__)-[r:__TYPE__]->(t)
WHERE id(s) = nid
  AND ($since IS NULL OR r.ts >= $since)
  AND ($until IS NULL OR r.ts < $until)
RETURN collect(id(s)) AS s, collect(id(t)) AS t, collect(coalesce(r.ts, $missing)) AS ts,
       collect(coalesce(r.weight, r.count, 1.0)) AS w
