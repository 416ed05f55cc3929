// Purpose: prefix completion for a user: queries whose text starts with $prefix (the query
//          text index), ranked by cosine similarity to the user's vector in the active version.
// Parameters: $prefix (lowercase), $vec, $k, $version, $candidates (most prefix matches
//             scored); __PROPERTY__ is the active slot.
// Example: $prefix = 'rac', $vec = [0.1, …], $k = 10, $version = 'v20261126-233000-1a2b3c',
//          $candidates = 2000
MATCH (q:Query)
WHERE q.text STARTS WITH $prefix AND q.__PROPERTY___version = $version
WITH q
LIMIT $candidates
RETURN q.id AS id, q.text AS text, vector.similarity.cosine(q.__PROPERTY__, $vec) AS score
ORDER BY score DESC, text
LIMIT $k
