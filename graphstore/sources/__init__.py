"""Sources: what turns data into graph rows without touching a database.

* :mod:`graphstore.sources.loaders`: one loader per dataset format, files →
  :class:`graphstore.records.GraphSource`;
* :mod:`graphstore.sources.synthetic`: a shop with a planted preference model (the oracle),
  :mod:`graphstore.sources.synthetic_scale`: large random shops for benchmarks;
* :mod:`graphstore.sources.text`: query and title normalisation (tokens, stems, terms).

Nothing here imports the Neo4j driver (a unit test asserts it): the store's ingestion
(:mod:`graphstore.ingest`, or :mod:`dpgcn.bulk_import` offline) writes what these modules
produce.
"""
