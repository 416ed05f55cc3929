// Purpose: the number of relationships in the graph (benchmarks size their graph with it).
// Parameters: none.
// Example: (no parameters)
MATCH ()-[r]->()
RETURN count(r) AS n
