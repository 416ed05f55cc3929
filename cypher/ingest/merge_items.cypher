// Purpose: create or update items.
// Returns: ids — [id, internal node id] of every row written (the loader resolves
//          relationship endpoints with them instead of an index seek per row).
// Parameters: $rows — list of {id, title, price}.
// Example: $rows = [{id: 'i1', title: 'Forza Motorsport 4', price: 59.99}]
UNWIND $rows AS row
MERGE (i:Item {id: row.id})
SET i.title = row.title, i.price = row.price
RETURN collect([row.id, id(i)]) AS ids
