// Purpose: what in-memory explanations need about the searched queries: each query some user
//          searched, its text (else id), the items it led to and its terms.
// Parameters: none.
// Example: (none)
MATCH (q:Query)
WHERE EXISTS { (q)<-[:SEARCHED]-(:User) }
RETURN q.id AS id, coalesce(q.text, q.id) AS text,
       [(q)-[:LED_TO]->(i:Item) | i.id] AS led,
       [(q)-[:HAS_TERM]->(t:Term) | t.id] AS terms
