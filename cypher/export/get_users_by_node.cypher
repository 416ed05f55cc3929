// Purpose: the consenting users among given internal node ids (a k-hop selection), as
//          parallel columns like export/get_user_columns.
// Parameters: $nids — list of internal node ids.
// Example: $nids = [3, 7]
UNWIND $nids AS nid
MATCH (u:User)
WHERE id(u) = nid AND coalesce(u.consent, true)
RETURN collect(id(u)) AS nid, collect(u.id) AS id, collect(coalesce(u.age, -1)) AS age,
       collect(coalesce(u.gender, '')) AS gender, collect(coalesce(u.occupation, '')) AS occupation
