// Purpose: a (:Policy) version number is unique within its model version.
// Parameters: none.
CREATE CONSTRAINT policy_version_unique IF NOT EXISTS
FOR (p:Policy) REQUIRE (p.model_version, p.version) IS UNIQUE
