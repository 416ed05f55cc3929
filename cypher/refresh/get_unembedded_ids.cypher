// Purpose: the ids of the nodes of one label without a vector of a model version in its slot:
//          nodes created after that version was trained. Users who withdrew consent are left
//          out, as the export leaves them out (they get no vector).
// Parameters: $version — the model version; __LABEL__ (User | Item | Query) and __PROPERTY__
//             (the version's slot, embedding_a | embedding_b) come from the whitelist.
// Example: $version = 'v20261126-233000-1a2b3c', __LABEL__ = Item, __PROPERTY__ = embedding_a
MATCH (n:__LABEL__)
WHERE (n.__PROPERTY___version IS NULL OR n.__PROPERTY___version <> $version)
  AND coalesce(n.consent, true)
RETURN collect(n.id) AS ids
