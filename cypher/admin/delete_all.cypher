// Purpose: remove every node and relationship (tests, `dpgcn load --replace`), in batches.
//          Schema (constraints, indexes) stays. Run in an implicit (auto-commit) transaction.
// Parameters: none.
MATCH (n)
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS
