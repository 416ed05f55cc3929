// Purpose: the most searched queries whose text starts with $prefix ('' for all): the
//          non-personalized query suggestions.
// Parameters: $prefix (lowercase), $k.
// Example: $prefix = 'rac', $k = 10
MATCH (q:Query)
WHERE q.text STARTS WITH $prefix
CALL (q) {
  OPTIONAL MATCH (q)<-[s:SEARCHED]-()
  RETURN sum(coalesce(s.count, 1)) AS searches
}
WITH q, searches
WHERE searches > 0
RETURN q.id AS id, q.text AS text, toFloat(searches) AS score
ORDER BY score DESC, text
LIMIT $k
