// Purpose: every user id (a restore hashes them with the erasure salt to find the users whose
//          erasure, recorded in the erasure log outside the graph, is newer than the backup).
// Parameters: none.
// Example: (no parameters)
MATCH (u:User)
RETURN u.id AS id
