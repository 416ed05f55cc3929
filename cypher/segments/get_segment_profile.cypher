// Purpose: one segment's profile for analysts: size, rates, the categories and terms it
//          over-indexes on (AFFINITY, by lift), its top items with titles and top queries.
// Parameters: $segment_id.
// Example: $segment_id = 'v20261126-233000-1a2b3c:0'
MATCH (s:Segment|ArchivedSegment {id: $segment_id})
CALL (s) {
  OPTIONAL MATCH (s)-[a:AFFINITY]->(c:Category)
  WITH c, a ORDER BY a.lift DESC
  RETURN collect({category: coalesce(c.name, c.id), lift: round(a.lift, 2)}) AS categories
}
CALL (s) {
  OPTIONAL MATCH (s)-[a:AFFINITY]->(t:Term)
  WITH t, a ORDER BY a.lift DESC
  RETURN collect({term: t.id, lift: round(a.lift, 2)}) AS terms
}
CALL (s) {
  UNWIND coalesce(s.top_items, []) AS item_id
  MATCH (i:Item {id: item_id})
  RETURN collect(coalesce(i.title, i.id)) AS items
}
RETURN s.id AS id, s.name AS name, s.model_version AS version, s.size AS size,
       s.click_rate AS click_rate, s.purchase_rate AS purchase_rate,
       categories, terms, items, s.top_queries AS queries
