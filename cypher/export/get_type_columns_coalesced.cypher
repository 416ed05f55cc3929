// Purpose: like export/get_type_columns, for a relationship type where some relationships
//          lack ts or weight: time $missing when ts is null, weight from weight, else count,
//          else 1.0 (columns stay aligned).
// Parameters: $missing — the time to return for a relationship without ts (NaN); $since,
//             $until — time window bounds or null. __TYPE__ is filled from
//             graphstore.model.EDGE_TYPES.
// Example: __TYPE__ = LED_TO, $missing = NaN, $since = null, $until = null
MATCH (s)-[r:__TYPE__]->(t)
WHERE ($since IS NULL OR r.ts >= $since) AND ($until IS NULL OR r.ts < $until)
RETURN collect(id(s)) AS s, collect(id(t)) AS t, collect(coalesce(r.ts, $missing)) AS ts,
       collect(coalesce(r.weight, r.count, 1.0)) AS w
