// Purpose: how many nodes the database holds, of any label (count store). The bulk import
//          (`dpgcn load … --bulk`) is refused unless this is 0: it replaces the whole store.
// Parameters: none.
// Example: (no parameters)
MATCH (n)
RETURN count(n) AS n
