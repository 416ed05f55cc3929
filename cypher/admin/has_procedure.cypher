// Purpose: whether the server has a procedure registered (the project's own procedures are
//          optional: a server without them, e.g. one not managed by dpgcn, gets the Cypher
//          statements that do the same work more slowly).
// Parameters: $name — the procedure's full name.
// Example: $name = 'dpgcn.export.relationshipColumns'
SHOW PROCEDURES YIELD name WHERE name = $name
RETURN count(*) > 0 AS present
