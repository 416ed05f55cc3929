// Purpose: create categories and link each to its parent (hierarchy).
// Returns: ids — [id, internal node id] of every row written (the loader resolves
//          relationship endpoints with them instead of an index seek per row).
// Parameters: $rows — list of {id, name, parent} (parent may be null; parents first).
// Example: $rows = [{id: 'c0', name: 'Games', parent: null}, {id: 'c0.1', name: 'Racing', parent: 'c0'}]
UNWIND $rows AS row
MERGE (c:Category {id: row.id})
SET c.name = row.name
WITH c, row
CALL (c, row) {
  WITH c, row WHERE row.parent IS NOT NULL
  MERGE (p:Category {id: row.parent})
  MERGE (c)-[:SUBCATEGORY_OF]->(p)
}
RETURN collect([row.id, id(c)]) AS ids
