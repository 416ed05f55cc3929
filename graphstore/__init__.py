"""Everything that talks to Neo4j over Bolt: driver, named queries, schema, ingestion, export
and write-back; the graph's vocabulary (:mod:`graphstore.model`). :mod:`graphstore.sources`
(loaders, synthetic generators, text normalisation) builds rows without any database. Never
imports torch; starting and stopping the local servers is :mod:`dpgcn`'s (``dpgcn.services``)."""
