// Purpose: create or update items.
// Parameters: $rows — list of {id, title, price}.
// Example: $rows = [{id: 'i1', title: 'Forza Motorsport 4', price: 59.99}]
UNWIND $rows AS row
MERGE (i:Item {id: row.id})
SET i.title = row.title, i.price = row.price
RETURN count(*) AS written
