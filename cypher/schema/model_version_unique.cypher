// Purpose: every :Model (a trained, written-back model version) has a unique version.
// Parameters: none.
CREATE CONSTRAINT model_version_unique IF NOT EXISTS FOR (m:Model) REQUIRE m.version IS UNIQUE
