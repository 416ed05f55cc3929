// Purpose: drop a vector index (before recreating it with another dimension).
// Parameters: $name — index name.
// Example: $name = 'item_embedding_a'
DROP INDEX $name IF EXISTS
