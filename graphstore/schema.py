"""Constraints and indexes from ``cypher/schema/*.cypher`` (idempotent: IF NOT EXISTS)."""

from __future__ import annotations

import logging

from neo4j import Driver

from graphstore import queries
from graphstore.driver import execute

logger = logging.getLogger(__name__)


def apply_schema(driver: Driver, database: str = "neo4j") -> list[str]:
    """Create every constraint and index of the graph model; returns the statement names."""
    names = [n for n in queries.names() if n.startswith("schema/")]
    for name in names:
        execute(driver, name, database=database)
    execute(driver, "admin/await_indexes", database=database)
    logger.info("schema applied (%d statements)", len(names))
    return names
