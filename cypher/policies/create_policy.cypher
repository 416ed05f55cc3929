// Purpose: store the next policy version of a model version, atomically: the model node is
//          write-locked first, so concurrent savers serialize and each gets its own number.
// Parameters: $model_version, $actor (bytes of a policy file), $created_at (ISO-8601 text),
//             $stats (map of numbers: updates, reward_mean, transitions, …).
// Example: $model_version = 'v1', $actor = <bytes>, $created_at = '2026-01-01T00:00:00+00:00',
//          $stats = {updates: 0, reward_mean: 0.0}
MATCH (m:Model {version: $model_version})
SET m._policy_lock = true
WITH m
OPTIONAL MATCH (old:Policy)-[:POLICY_OF]->(m)
WITH m, coalesce(max(old.version), 0) + 1 AS next
CREATE (p:Policy {model_version: $model_version, version: next})-[:POLICY_OF]->(m)
SET p += $stats, p.actor = $actor, p.created_at = $created_at
REMOVE m._policy_lock
RETURN p.version AS version
