// Purpose: whether an item exists (404 vs empty answers).
// Parameters: $item_id.
// Example: $item_id = 'i42'
MATCH (i:Item {id: $item_id})
RETURN i.id AS id
