// Purpose: every :ApiKey has a unique id (the public part of a key; the secret is only hashed).
// Parameters: none.
CREATE CONSTRAINT api_key_id_unique IF NOT EXISTS FOR (n:ApiKey) REQUIRE n.id IS UNIQUE
