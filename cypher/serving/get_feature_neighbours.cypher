// Purpose: cold start (the paper's k-NN rule): the active version's vectors of the k users
//          closest in static features — same occupation and gender, nearest age (±$window
//          years) — who allow personalization.
// Parameters: $occupation, $gender, $age, $window, $k, $version; __PROPERTY__ is the active slot.
// Example: $occupation = 'engineer', $gender = 'F', $age = 31, $window = 5, $k = 10,
//          $version = 'v20261126-233000-1a2b3c'
MATCH (o:User)
WHERE o.occupation = $occupation AND o.gender = $gender
  AND o.age >= $age - $window AND o.age <= $age + $window
  AND o.__PROPERTY___version = $version
  AND coalesce(o.consent, true)
WITH o, abs(o.age - $age) AS distance
ORDER BY distance, o.id
LIMIT $k
RETURN o.__PROPERTY__ AS vec, distance
