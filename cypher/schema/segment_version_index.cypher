// Purpose: find a model version's segments fast (every segment statement matches
//          (:Segment {model_version: $version})).
// Parameters: none.
CREATE INDEX segment_version_index IF NOT EXISTS FOR (n:Segment) ON (n.model_version)
