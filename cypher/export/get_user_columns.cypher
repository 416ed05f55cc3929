// Purpose: every consenting user for an export, as parallel columns (internal id, id and
//          static features); users who withdrew consent for personalization are left out.
//          Missing features come back as sentinels (age -1, gender/occupation '') because
//          collect() skips nulls and the columns must stay aligned.
// Parameters: none.
// Example: (no parameters)
MATCH (u:User)
WHERE coalesce(u.consent, true)
RETURN collect(id(u)) AS nid, collect(u.id) AS id, collect(coalesce(u.age, -1)) AS age,
       collect(coalesce(u.gender, '')) AS gender, collect(coalesce(u.occupation, '')) AS occupation
