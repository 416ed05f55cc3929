// Purpose: the ids of the items in one category or any of its subcategories (the category
//          filter of recommendations); no row when the category does not exist.
// Parameters: $category.
// Example: $category = 'c3'
MATCH (c:Category {id: $category})
OPTIONAL MATCH (i:Item)-[:IN_CATEGORY]->(:Category)-[:SUBCATEGORY_OF*0..]->(c)
RETURN c.id AS category, collect(DISTINCT i.id) AS items
