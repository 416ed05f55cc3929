// Purpose: record a batch of feedback events idempotently by event id and apply the new ones
//          to the graph: view/click/purchase count up VIEWED/CLICKED/PURCHASED (and a click
//          with a query counts up LED_TO), search counts up SEARCHED to the normalized query.
//          An event id seen before changes nothing (is_new false), so a retried batch is a
//          no-op. Events naming an unknown item are skipped (no row returned). Events of an
//          erased user (a tombstone (:ErasedUser {id_hash}) exists) are skipped too, neither
//          stored nor applied, so they cannot re-create the user: one row each with
//          skipped = 'user erased' (null for every other row). A new event of a user who
//          does not allow personalization (consent false) is stored with withheld = true: it
//          never reaches the feedback stream, not even after consent is switched back on.
// Parameters: $rows — list of {id, user_id, id_hash (the user id's salted hash, null when
//             nobody was ever erased), type ('search'|'view'|'click'|'purchase'), item_id,
//             query (normalized id), query_text, ts}; $batch (a fresh id per call); $now
//             (epoch seconds).
// Example: $rows = [{id: 'e1', user_id: 'u1', id_hash: null, type: 'click', item_id: 'i1',
//          query: 'game race', query_text: 'racing games', ts: 1700000000.0}], $batch = 'b1',
//          $now = 1700000001.0
UNWIND $rows AS row
OPTIONAL MATCH (i:Item {id: row.item_id})
WITH row, i
WHERE (row.type = 'search' OR i IS NOT NULL)
  AND NOT EXISTS { (:ErasedUser {id_hash: row.id_hash}) }
MERGE (e:Event {id: row.id})
  ON CREATE SET e.user_id = row.user_id, e.type = row.type, e.item_id = row.item_id,
                e.query = row.query, e.ts = row.ts, e.received_at = $now, e.batch = $batch,
                e.streamed = false
WITH row, i, e, e.batch = $batch AS is_new
CALL (row, i, is_new) {
  WITH row, i
  WHERE is_new
  MERGE (u:User {id: row.user_id})
  WITH row, i, u
  CALL (row, i, u) {
    WITH row, i, u
    WHERE row.type = 'view'
    MERGE (u)-[r:VIEWED]->(i)
    SET r.count = coalesce(r.count, 0) + 1, r.weight = coalesce(r.weight, 0.0) + 1.0,
        r.ts = CASE WHEN r.ts IS NULL OR row.ts > r.ts THEN row.ts ELSE r.ts END
  }
  CALL (row, i, u) {
    WITH row, i, u
    WHERE row.type = 'click'
    MERGE (u)-[r:CLICKED]->(i)
    SET r.count = coalesce(r.count, 0) + 1, r.weight = coalesce(r.weight, 0.0) + 1.0,
        r.ts = CASE WHEN r.ts IS NULL OR row.ts > r.ts THEN row.ts ELSE r.ts END
  }
  CALL (row, i, u) {
    WITH row, i, u
    WHERE row.type = 'purchase'
    MERGE (u)-[r:PURCHASED]->(i)
    SET r.count = coalesce(r.count, 0) + 1, r.weight = coalesce(r.weight, 0.0) + 1.0,
        r.ts = CASE WHEN r.ts IS NULL OR row.ts > r.ts THEN row.ts ELSE r.ts END
  }
  CALL (row, u) {
    WITH row, u
    WHERE row.type = 'search'
    MERGE (q:Query {id: row.query})
      ON CREATE SET q.text = row.query_text
    FOREACH (stem IN split(row.query, ' ') |
      MERGE (t:Term {id: stem})
      MERGE (q)-[:HAS_TERM]->(t))
    MERGE (u)-[s:SEARCHED]->(q)
    SET s.count = coalesce(s.count, 0) + 1, s.weight = coalesce(s.weight, 0.0) + 1.0,
        s.ts = CASE WHEN s.ts IS NULL OR row.ts > s.ts THEN row.ts ELSE s.ts END
  }
  CALL (row, i) {
    WITH row, i
    WHERE row.type = 'click' AND row.query IS NOT NULL
    MATCH (q:Query {id: row.query})
    MERGE (q)-[l:LED_TO]->(i)
    SET l.count = coalesce(l.count, 0) + 1
  }
  RETURN count(*) AS applied
}
OPTIONAL MATCH (owner:User {id: row.user_id})
WITH row, is_new, e, coalesce(owner.consent, true) AS consent
FOREACH (_ IN CASE WHEN is_new AND NOT consent THEN [1] ELSE [] END | SET e.withheld = true)
RETURN row.id AS id, is_new, e.streamed AS streamed, consent, null AS skipped
UNION ALL
UNWIND $rows AS row
WITH row
WHERE EXISTS { (:ErasedUser {id_hash: row.id_hash}) }
RETURN row.id AS id, false AS is_new, false AS streamed, false AS consent,
       'user erased' AS skipped
