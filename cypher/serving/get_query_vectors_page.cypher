// Purpose: one page of the query vectors of model version $version, column-wise, for the API's
//          in-memory query suggestions: of the next $page queries by id after $after, those
//          holding a vector of that version, with their text (null when none). `last` is the
//          page's last query id (the cursor for the next page; null when no query is left).
// Parameters: $after ('' for the first page), $page, $version; __PROPERTY__ is that version's
//             slot (embedding_a | embedding_b).
// Example: $after = 'game race', $page = 20000, $version = 'v20261126-233000-1a2b3c'
MATCH (q:Query)
WHERE q.id > $after
WITH q
ORDER BY q.id
LIMIT $page
WITH collect(q) AS page
WITH page[-1].id AS last,
     [q IN page WHERE q.__PROPERTY___version = $version AND q.__PROPERTY__ IS NOT NULL] AS kept
RETURN last, [q IN kept | q.id] AS ids, [q IN kept | q.text] AS texts,
       [q IN kept | q.__PROPERTY__] AS vecs
