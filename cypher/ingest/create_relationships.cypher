// Purpose: one batch of new relationships (the loader's CREATE fast path, like
//          ingest/create_interactions and its siblings) sent as packed columns to the
//          project's procedure dpgcn.ingest.createRelationships, which writes them with the
//          kernel's write operations in this transaction: no list per row to pack, unpack and
//          plan over. Endpoints are internal node ids; one that is not a node with the given
//          label is skipped (not written, not counted).
// Parameters: $type, $sourceLabel, $targetLabel — from graphstore.model.EDGE_TYPES only;
//             $source, $target — int64 node ids; $count — int64 (min int64 = unset) or null;
//             $ts, $weight — float64 (NaN = unset) or null; all little-endian byte arrays.
// Example: $type = 'CLICKED', $sourceLabel = 'User', $targetLabel = 'Item',
//          $source = <8 bytes: 0>, $target = <8 bytes: 2001>, $count = <8 bytes: 2>,
//          $ts = <8 bytes: 1700000000.0>, $weight = <8 bytes: 2.0>
CALL dpgcn.ingest.createRelationships($type, $sourceLabel, $targetLabel, $source, $target,
                                      $count, $ts, $weight)
YIELD written
RETURN written
