// Purpose: every item embedding of one model version (serving loads them once per version, and
//          again when the version's Model node gets a new refreshed_at), with what in-memory
//          explanations need: the item's categories (name, else id) and its terms.
// Parameters: $version; __PROPERTY__ is that version's slot.
// Example: $version = 'v20261126-233000-1a2b3c'
MATCH (i:Item)
WHERE i.__PROPERTY___version = $version
RETURN i.id AS id, i.title AS title, i.__PROPERTY__ AS vec,
       [(i)-[:IN_CATEGORY]->(c:Category) | coalesce(c.name, c.id)] AS categories,
       [(i)-[:HAS_TERM]->(t:Term) | t.id] AS terms
