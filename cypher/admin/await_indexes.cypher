// Purpose: block until every index is online (after schema changes, before bulk loads).
// Parameters: none.
CALL db.awaitIndexes(300)
