// Purpose: mark the end of a restore (the database loaded and the erasure and revocation logs
//          replayed) with a new epoch, so that running API processes drop what they read
//          before the replay (see admin/get_store_id).
// Parameters: $epoch (a random hex string), $now (epoch seconds).
// Example: $epoch = '3f2a9c1d0b7e4a65', $now = 1700000000.0
MERGE (e:RestoreEpoch {id: 'restore'})
SET e.value = $epoch, e.restored_at = $now
RETURN e.value AS epoch
