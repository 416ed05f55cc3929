// Purpose: the server's kernel version (health checks).
// Parameters: none.
CALL dbms.components() YIELD name, versions
WHERE name = 'Neo4j Kernel'
RETURN versions[0] AS version
