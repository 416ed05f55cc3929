// Purpose: the active model version with its slot and dimension (serving reads this).
// Parameters: none.
MATCH (m:Model {active: true})
RETURN m.version AS version, m.slot AS slot, m.dim AS dim, m.model_name AS model_name,
       m.metrics AS metrics, m.activated_at AS activated_at, m.run_id AS run_id
LIMIT 1
