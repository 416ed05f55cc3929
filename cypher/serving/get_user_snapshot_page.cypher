// Purpose: one page of the API's in-memory serving snapshot, column-wise: of the next $page
//          users by id after $after, those who allow personalization and hold a vector of
//          model version $version, with that vector, the items each has seen, newest first
//          (the same order as serving/get_user_state), the type of the newest interaction with
//          each and whether it was ever bought, the newest $searches searches (query ids) and
//          the user's segment of that version ('' for none). `last` is the page's last user id
//          (the cursor for the next page; null when no user is left).
// Parameters: $after ('' for the first page), $page, $version, $searches; __PROPERTY__ is that
//             version's slot (embedding_a | embedding_b).
// Example: $after = 'u41999', $page = 20000, $version = 'v20261126-233000-1a2b3c', $searches = 10
MATCH (u:User)
WHERE u.id > $after
WITH u
ORDER BY u.id
LIMIT $page
WITH collect(u) AS page
WITH page[-1].id AS last,
     [u IN page WHERE u.__PROPERTY___version = $version AND u.__PROPERTY__ IS NOT NULL
                  AND coalesce(u.consent, true)] AS users
CALL (users) {
  UNWIND users AS u
  CALL (u) {
    MATCH (u)-[r:VIEWED|CLICKED|PURCHASED|RATED]->(i:Item)
    WITH i, r
    ORDER BY coalesce(r.ts, 0.0) DESC
    WITH i, collect(type(r)) AS types, max(coalesce(r.ts, 0.0)) AS ts
    ORDER BY ts DESC, i.id
    RETURN collect(i.id) AS seen, collect(types[0]) AS how,
           collect('PURCHASED' IN types) AS bought
  }
  CALL (u) {
    MATCH (u)-[s:SEARCHED]->(q:Query)
    WITH q, s
    ORDER BY coalesce(s.ts, 0.0) DESC, q.id
    LIMIT $searches
    RETURN collect(q.id) AS searches
  }
  CALL (u) {
    OPTIONAL MATCH (u)-[:IN_SEGMENT]->(s:Segment {model_version: $version})
    RETURN coalesce(s.id, '') AS segment
    LIMIT 1
  }
  RETURN collect(u.id) AS ids, collect(u.__PROPERTY__) AS vecs, collect(seen) AS seen,
         collect(how) AS how, collect(bought) AS bought, collect(searches) AS searches,
         collect(segment) AS segments
}
RETURN last, ids, vecs, seen, how, bought, searches, segments
