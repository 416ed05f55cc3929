// Purpose: the outbox: stored events never appended to the feedback stream (the API's append
//          failed, e.g. Redis was down), oldest first, of users who allow personalization;
//          events received while their user did not (withheld) are never streamed.
//          Events received after $before are left to the API call still appending them.
// Parameters: $before (epoch seconds), $limit.
// Example: $before = 1700000000.0, $limit = 1000
MATCH (e:Event)
WHERE e.streamed = false AND e.received_at <= $before AND e.withheld IS NULL
OPTIONAL MATCH (u:User {id: e.user_id})
WITH e, u
WHERE coalesce(u.consent, true)
RETURN e.id AS id, e.user_id AS user_id, e.type AS type, e.item_id AS item_id,
       e.query AS query, e.ts AS ts
ORDER BY e.received_at, e.id
LIMIT $limit
