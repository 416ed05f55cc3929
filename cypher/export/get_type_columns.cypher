// Purpose: every relationship of one type (a whole-graph export: a relationship-type scan,
//          no per-node seek), as parallel columns in one record: internal source and target
//          ids, ts and weight. No coalesce: collect() skips nulls, so a ts or weight column
//          shorter than the id columns means some relationships lack that property, and the
//          caller then runs export/get_type_columns_coalesced instead. Optionally only
//          relationships whose ts lies in [$since, $until) (a null bound is open).
// Parameters: $since, $until — time window bounds or null. __TYPE__ is filled from
//             graphstore.model.EDGE_TYPES. Endpoint labels are not checked: the caller keeps
//             only endpoints among the exported nodes of the edge type's labels.
// Example: __TYPE__ = CLICKED, $since = 1700000000.0, $until = null
MATCH (s)-[r:__TYPE__]->(t)
WHERE ($since IS NULL OR r.ts >= $since) AND ($until IS NULL OR r.ts < $until)
RETURN collect(id(s)) AS s, collect(id(t)) AS t, collect(r.ts) AS ts, collect(r.weight) AS w
