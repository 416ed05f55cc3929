// Purpose: the identity of the database's store: its id and creation time, and the epoch the
//          last restore set (null when none). A backup records it; the API compares it to
//          notice a restored store (its driver's bookmarks then name transactions the new
//          store never had, and its caches hold the old graph's state).
// Parameters: none.
// Example: (no parameters)
CALL db.info() YIELD id, creationDate
OPTIONAL MATCH (e:RestoreEpoch {id: 'restore'})
RETURN id AS store_id, toString(creationDate) AS created, e.value AS epoch
