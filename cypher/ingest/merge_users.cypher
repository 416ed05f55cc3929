// Purpose: create or update users with their static features.
// Returns: ids — [id, internal node id] of every row written (the loader resolves
//          relationship endpoints with them instead of an index seek per row).
// Parameters: $rows — list of {id, age, gender, occupation, consent}.
// Example: $rows = [{id: 'u1', age: 31, gender: 'F', occupation: 'engineer', consent: true}]
UNWIND $rows AS row
MERGE (u:User {id: row.id})
SET u.age = row.age, u.gender = row.gender, u.occupation = row.occupation,
    u.consent = coalesce(row.consent, true)
RETURN collect([row.id, id(u)]) AS ids
