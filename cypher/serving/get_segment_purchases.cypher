// Purpose: for in-memory explanations, per segment of model version $version: its name and,
//          per item its members bought, how many members bought it.
// Parameters: $version.
// Example: $version = 'v20261126-233000-1a2b3c'
MATCH (s:Segment {model_version: $version})
CALL (s) {
  MATCH (s)<-[:IN_SEGMENT]-(o:User)-[:PURCHASED]->(i:Item)
  WITH i, count(DISTINCT o) AS buyers
  RETURN collect(i.id) AS items, collect(buyers) AS buyers
}
RETURN s.id AS id, s.name AS name, items, buyers
