// Purpose: when the items of model version $version were last refreshed (vectors written for
//          items created after its activation): the Model node's refreshed_at (epoch ms), or
//          null. Serving polls it to reload its item index.
// Parameters: $version.
// Example: $version = 'v20261126-233000-1a2b3c'
MATCH (m:Model {version: $version})
RETURN m.refreshed_at AS refreshed_at
