// Purpose: every :Event has a unique id (feedback is written idempotently by event id).
// Parameters: none.
CREATE CONSTRAINT event_id_unique IF NOT EXISTS FOR (n:Event) REQUIRE n.id IS UNIQUE
