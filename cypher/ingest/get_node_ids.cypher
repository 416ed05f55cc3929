// Purpose: internal node ids of existing nodes by key, for the relationship endpoints the
//          loader did not write itself in this load (nodes from earlier loads, batches a
//          resumed load skipped). Looked up once per key and load; keys not found are absent.
// Parameters: $ids — list of node ids (the `id` property); __LABEL__ from graphstore.model.
// Example: $ids = ['u1', 'u2'], __LABEL__ = User
UNWIND $ids AS key
MATCH (n:__LABEL__ {id: key})
RETURN collect([key, id(n)]) AS ids
