// Purpose: the consenting users among given external ids (seeds of a k-hop export), as
//          parallel columns like export/get_user_columns; unknown ids are skipped.
// Parameters: $ids — list of user ids.
// Example: $ids = ['u1', 'u2']
UNWIND $ids AS uid
MATCH (u:User {id: uid})
WHERE coalesce(u.consent, true)
RETURN collect(id(u)) AS nid, collect(u.id) AS id, collect(coalesce(u.age, -1)) AS age,
       collect(coalesce(u.gender, '')) AS gender, collect(coalesce(u.occupation, '')) AS occupation
