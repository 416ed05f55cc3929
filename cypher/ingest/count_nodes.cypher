// Purpose: how many nodes of one label exist — from the count store, without scanning. The
//          loader writes a node part with CREATE instead of MERGE only when this is 0.
// Parameters: none; __LABEL__ is filled from graphstore.model.NODE_LABELS.
// Example: __LABEL__ = User
MATCH (n:__LABEL__)
RETURN count(n) AS n
