// Purpose: one page of the API's in-memory serving snapshot, column-wise: of the next $page
//          users by id after $after, those who allow personalization and hold a vector of
//          model version $version, with that vector and the items each has seen, newest first
//          (the same order as serving/get_user_state). `last` is the page's last user id (the
//          cursor for the next page; null when no user is left).
// Parameters: $after ('' for the first page), $page, $version; __PROPERTY__ is that version's
//             slot (embedding_a | embedding_b).
// Example: $after = 'u41999', $page = 20000, $version = 'v20261126-233000-1a2b3c'
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
    OPTIONAL MATCH (u)-[r:VIEWED|CLICKED|PURCHASED|RATED]->(i:Item)
    WITH i, coalesce(max(r.ts), 0.0) AS ts
    ORDER BY ts DESC, i.id
    RETURN collect(i.id) AS seen
  }
  RETURN collect(u.id) AS ids, collect(u.__PROPERTY__) AS vecs, collect(seen) AS seen
}
RETURN last, ids, vecs, seen
