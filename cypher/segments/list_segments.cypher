// Purpose: the segments of one model version with their profile, largest first; `active` is
//          true while the version is the active one (the nodes are :Segment, not archived).
// Parameters: $version.
// Example: $version = 'v20261126-233000-1a2b3c'
MATCH (s:Segment|ArchivedSegment {model_version: $version})
RETURN s.id AS id, s.n AS n, s.name AS name, s.size AS size, s.click_rate AS click_rate,
       s.purchase_rate AS purchase_rate, s.top_items AS top_items,
       s.top_queries AS top_queries, s.top_categories AS top_categories,
       s.top_terms AS top_terms, s:Segment AS active
ORDER BY s.n
