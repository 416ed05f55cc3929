// Purpose: find the active model version quickly (serving checks it on every request).
// Parameters: none.
CREATE INDEX model_active IF NOT EXISTS FOR (m:Model) ON (m.active)
