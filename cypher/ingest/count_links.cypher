// Purpose: how many relationships of one (source label, type) exist — from the count store,
//          without scanning. The loader writes a part with CREATE instead of MERGE only when
//          this is 0 (a section of the graph that is new).
// Parameters: none; __SRC__ and __TYPE__ are filled from graphstore.model.EDGE_TYPES.
// Example: __SRC__ = User, __TYPE__ = CLICKED
MATCH (:__SRC__)-[r:__TYPE__]->()
RETURN count(r) AS n
