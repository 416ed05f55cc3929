// Purpose: record on the active model version that vectors were written for nodes created
//          after its training (serving reloads its item index when refreshed_at changes).
//          Nothing happens if the version is no longer the active one.
// Parameters: $version — the model version; $refreshed_at — epoch milliseconds; $written —
//             how many node vectors this refresh wrote (added to refreshed_nodes).
// Example: $version = 'v20261126-233000-1a2b3c', $refreshed_at = 1796000000000, $written = 3
MATCH (m:Model {version: $version, active: true})
SET m.refreshed_at = $refreshed_at,
    m.refreshed_nodes = coalesce(m.refreshed_nodes, 0) + $written
RETURN m.version AS version, m.refreshed_at AS refreshed_at, m.refreshed_nodes AS refreshed_nodes
