// Purpose: every id of one node label (Item, Query, Term, Category) for an export.
// Parameters: none; __LABEL__ is filled from graphstore.model's whitelist.
// Example: __LABEL__ = Item
MATCH (n:__LABEL__)
RETURN n.id AS id
