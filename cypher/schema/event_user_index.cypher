// Purpose: find a user's stored events (erasure deletes them by user id).
// Parameters: none.
CREATE INDEX event_user IF NOT EXISTS FOR (n:Event) ON (n.user_id)
