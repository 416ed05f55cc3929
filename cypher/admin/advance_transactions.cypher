// Purpose: commit $count small transactions (each updates the restore marker node), so a
//          restored store's transaction ids reach those of the store it replaced and every
//          bookmark a client holds is satisfied at once. Run in an implicit (auto-commit)
//          transaction.
// Parameters: $count (how many transactions).
// Example: $count = 1200
UNWIND range(1, $count) AS i
CALL (i) {
  MERGE (e:RestoreEpoch {id: 'restore'})
  SET e.advanced = i
} IN TRANSACTIONS OF 1 ROW
