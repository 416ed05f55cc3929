"""Everything that talks to Neo4j: driver, named queries, schema, ingestion, export,
write-back and local server provisioning. Never imports torch."""
