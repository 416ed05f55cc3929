// Purpose: every item embedding of one model version (serving loads them once per version).
// Parameters: $version; __PROPERTY__ is that version's slot.
// Example: $version = 'v20261126-233000-1a2b3c'
MATCH (i:Item)
WHERE i.__PROPERTY___version = $version
RETURN i.id AS id, i.title AS title, i.__PROPERTY__ AS vec
