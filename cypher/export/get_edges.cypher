// Purpose: every relationship of one (source label, type, target label) for an export, as
//          id pairs with time and weight.
// Parameters: none; __SRC__, __TYPE__, __DST__ are filled from graphstore.model.EDGE_TYPES.
// Example: __SRC__ = User, __TYPE__ = CLICKED, __DST__ = Item
MATCH (s:__SRC__)-[r:__TYPE__]->(t:__DST__)
RETURN s.id AS s, t.id AS t, r.ts AS ts, coalesce(r.weight, r.count, 1) AS w
