// Purpose: the id of a database's last committed transaction (run on the `system` database).
//          A restore reads it before loading an older dump, and advances the restored store
//          past it (admin/advance_transactions): the bookmarks clients hold name transactions
//          up to this id, and the server would make them wait for ids the store never reaches.
// Parameters: $name (the database's name).
// Example: $name = 'neo4j'
SHOW DATABASE $name YIELD name, lastCommittedTxn
RETURN max(lastCommittedTxn) AS tx
