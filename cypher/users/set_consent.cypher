// Purpose: record whether a user allows personalization (false: non-personalized answers and
//          no training exports). Creates the user when unknown, so an opt-out can come first.
// Parameters: $user_id, $consent (bool), $now (epoch seconds).
// Example: $user_id = 'u42', $consent = false, $now = 1700000000.0
MERGE (u:User {id: $user_id})
SET u.consent = $consent, u.consent_updated_at = $now
RETURN u.consent AS consent
