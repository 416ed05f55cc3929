// Purpose: mark a written version complete, with its counts and metrics (JSON text).
// Parameters: $version, $counts (map label → nodes written), $metrics (JSON string),
//             $completed_at.
// Example: $version = 'v1', $counts = {User: 2000, Item: 500}, $metrics = '{"val_auc": 0.8}'
MATCH (m:Model {version: $version})
SET m.status = 'complete', m.completed_at = $completed_at, m.metrics = $metrics,
    m.users = $counts.User, m.items = $counts.Item, m.queries = $counts.Query
RETURN m.version AS version
