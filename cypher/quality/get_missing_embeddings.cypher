// Purpose: users, items and queries without an embedding of the active model version (new
//          since the last training, or left out of the export).
// Parameters: none.
// Example: (no parameters)
MATCH (m:Model {active: true})
CALL (m) {
  MATCH (n:User) WHERE n['embedding_' + m.slot + '_version'] IS NULL
     OR n['embedding_' + m.slot + '_version'] <> m.version
  RETURN 'User' AS label, count(n) AS missing
  UNION ALL
  MATCH (n:Item) WHERE n['embedding_' + m.slot + '_version'] IS NULL
     OR n['embedding_' + m.slot + '_version'] <> m.version
  RETURN 'Item' AS label, count(n) AS missing
  UNION ALL
  MATCH (n:Query) WHERE n['embedding_' + m.slot + '_version'] IS NULL
     OR n['embedding_' + m.slot + '_version'] <> m.version
  RETURN 'Query' AS label, count(n) AS missing
}
RETURN m.version AS version, label, missing
ORDER BY label
