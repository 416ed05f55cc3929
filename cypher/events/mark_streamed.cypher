// Purpose: remember that events were appended to the feedback stream (a retried batch
//          re-appends only events whose append had failed).
// Parameters: $ids.
// Example: $ids = ['e1', 'e2']
UNWIND $ids AS event_id
MATCH (e:Event {id: event_id})
SET e.streamed = true
RETURN count(e) AS marked
