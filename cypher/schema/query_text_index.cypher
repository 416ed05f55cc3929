// Purpose: query suggestions by typed prefix (STARTS WITH uses this text index).
// Parameters: none.
CREATE TEXT INDEX query_text IF NOT EXISTS FOR (q:Query) ON (q.text)
