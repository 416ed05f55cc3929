// Purpose: items that belong to no category (they never show up in category targeting or
//          segment affinities).
// Parameters: $limit.
// Example: $limit = 20
MATCH (i:Item)
WHERE NOT EXISTS { (i)-[:IN_CATEGORY]->(:Category) }
WITH collect(i.id) AS ids
RETURN size(ids) AS items, ids[..$limit] AS sample
