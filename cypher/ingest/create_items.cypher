// Purpose: items into a graph that has no :Item yet (the loader's fast path).
// Returns: ids — [id, internal node id] of every row written.
// Parameters: $rows — list of {id, title, price}, one row per id.
// Example: $rows = [{id: 'i1', title: 'Forza Motorsport 4', price: 59.99}]
UNWIND $rows AS row
CREATE (i:Item {id: row.id, title: row.title, price: row.price})
RETURN collect([row.id, id(i)]) AS ids
