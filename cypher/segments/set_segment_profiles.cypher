// Purpose: store each segment's profile: generated name, rates and the top over-indexing
//          items, queries, categories and terms (ids, by decreasing lift); the segments are
//          still :ArchivedSegment while being written.
// Parameters: $rows — list of {id, name, size, click_rate, purchase_rate, top_items,
//             top_queries, top_categories, top_terms}.
// Example: $rows = [{id: 'v1:0', name: 'Kalo mi & Tefe ra · “kalo”', size: 412,
//          click_rate: 11.3, purchase_rate: 0.21, top_items: ['i4'], top_queries: ['kalo'],
//          top_categories: ['c0.1'], top_terms: ['kalo']}]
UNWIND $rows AS row
MATCH (s:ArchivedSegment {id: row.id})
SET s.name = row.name, s.size = row.size, s.click_rate = row.click_rate,
    s.purchase_rate = row.purchase_rate, s.top_items = row.top_items,
    s.top_queries = row.top_queries, s.top_categories = row.top_categories,
    s.top_terms = row.top_terms
RETURN count(s) AS updated
