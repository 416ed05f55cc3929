// Purpose: the nodes of one label among given internal node ids (a k-hop selection), as
//          parallel columns of internal and external ids.
// Parameters: $nids — list of internal node ids; __LABEL__ from graphstore.model's whitelist.
// Example: __LABEL__ = Item, $nids = [12, 40, 41]
UNWIND $nids AS nid
MATCH (n:__LABEL__)
WHERE id(n) = nid
RETURN collect(id(n)) AS nid, collect(n.id) AS id
