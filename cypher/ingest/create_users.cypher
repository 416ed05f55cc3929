// Purpose: users into a graph that has no :User yet (the loader's fast path: CREATE skips
//          MERGE's lookup and lock; the unique constraint still checks every id on commit).
// Returns: ids — [id, internal node id] of every row written.
// Parameters: $rows — list of {id, age, gender, occupation, consent}, one row per id.
// Example: $rows = [{id: 'u1', age: 31, gender: 'F', occupation: 'engineer', consent: true}]
UNWIND $rows AS row
CREATE (u:User {id: row.id, age: row.age, gender: row.gender, occupation: row.occupation,
                consent: coalesce(row.consent, true)})
RETURN collect([row.id, id(u)]) AS ids
