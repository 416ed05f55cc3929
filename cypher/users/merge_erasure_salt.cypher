// Purpose: the salt of the erased-user hashes, created on first use from a random $candidate
//          (the graph keeps one salt; every process hashes with it).
// Parameters: $candidate (a random hex string), $now (epoch seconds).
// Example: $candidate = '9f86d081884c7d65…', $now = 1700000000.0
MERGE (k:ErasureSalt {id: 'erasure'})
  ON CREATE SET k.value = $candidate, k.created_at = $now
RETURN k.value AS salt
