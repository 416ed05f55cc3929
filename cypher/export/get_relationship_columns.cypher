// Purpose: every relationship of the given types as packed columns, read by the project's
//          procedure in one pass over the relationship store (a whole-graph export; the
//          values of export/get_type_columns_coalesced, without one list element per value):
//          per chunk of one type, internal source and target ids (int64), ts (float64, NaN
//          when missing) and weight (float32: weight, else count, else 1.0), little-endian.
// Parameters: $types — relationship type names; $since, $until — time window bounds or null
//             (with a bound, relationships without ts are left out); $chunk — most edges per
//             record; $partition, $partitions — only relationships whose internal id modulo
//             $partitions is $partition (concurrent calls share the work).
// Example: $types = ['CLICKED', 'VIEWED'], $since = null, $until = null, $chunk = 1048576,
//          $partition = 0, $partitions = 1
CALL dpgcn.export.relationshipColumns($types, $since, $until, $chunk, $partition, $partitions)
YIELD type, count, source, target, ts, weight
RETURN type, count, source, target, ts, weight
