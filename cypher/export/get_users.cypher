// Purpose: users for a training export, with static features; users who withdrew consent
//          for personalization are left out.
// Parameters: none.
MATCH (u:User)
WHERE coalesce(u.consent, true)
RETURN u.id AS id, u.age AS age, u.gender AS gender, u.occupation AS occupation
