// Purpose: every node of one label (Item, Query, Term, Category) for an export, as two
//          parallel columns: internal node id (to map edge endpoints) and external id.
// Parameters: none; __LABEL__ is filled from graphstore.model's whitelist.
// Example: __LABEL__ = Item
MATCH (n:__LABEL__)
RETURN collect(id(n)) AS nid, collect(n.id) AS id
