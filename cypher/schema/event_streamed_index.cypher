// Purpose: find the events not yet appended to the feedback stream (the outbox drain).
// Parameters: none.
CREATE INDEX event_streamed IF NOT EXISTS FOR (n:Event) ON (n.streamed)
