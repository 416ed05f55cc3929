"""Driver construction and named-query execution with errors wrapped into GraphStoreError."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from neo4j import Driver, GraphDatabase, RoutingControl
from neo4j.exceptions import (
    AuthError,
    ClientError,
    DatabaseUnavailable,
    Neo4jError,
    ResultError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from graphstore import queries
from graphstore.errors import GraphAuthError, GraphStoreError, GraphUnavailableError

logger = logging.getLogger(__name__)

#: Errors that a retry after a pause may cure (server restart, leader switch, deadlock).
TRANSIENT = (ServiceUnavailable, SessionExpired, TransientError, DatabaseUnavailable)


def connect(uri: str, user: str, password: str, *, verify: bool = True, **config: Any) -> Driver:
    """A driver for ``uri``; fails with a clear error on wrong credentials or no server.
    ``verify=False`` skips the check (a long-lived service that must start while Neo4j is
    down and answer 503 until it is up)."""
    config.setdefault("connection_timeout", 5.0)
    config.setdefault("max_connection_pool_size", 50)
    config.setdefault("notifications_min_severity", "OFF")
    driver = GraphDatabase.driver(uri, auth=(user, password), **config)
    if not verify:
        return driver
    try:
        driver.verify_connectivity()
    except AuthError as e:
        driver.close()
        raise GraphAuthError(
            f"Neo4j at {uri} rejected the credentials for user {user!r}: check NEO4J_USER / "
            "NEO4J_PASSWORD (or the managed server's password file)"
        ) from e
    except (ServiceUnavailable, OSError) as e:
        driver.close()
        raise GraphUnavailableError(f"Neo4j at {uri} is not reachable: {e}") from e
    return driver


class QuietList(list):  # type: ignore[type-arg]
    """A list parameter whose ``repr`` is one short line.

    The driver formats every RUN message's parameters with ``repr`` for its debug log before
    it knows whether debug logging is on (neo4j 6: ``_bolt5.run``). For a large relationship
    batch that costs more client CPU than packing it, CPU a loader competes with the server
    for (``docs/benchmarks.md``, ingestion). It also keeps ids out of a debug log. Packed
    exactly like a list (same bytes, tested)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<list of {len(self)}>"


#: Lists longer than this are sent as :class:`QuietList`.
QUIET_FROM = 64


def quiet(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` with every long list parameter wrapped in :class:`QuietList`."""
    return {
        k: QuietList(v) if type(v) is list and len(v) > QUIET_FROM else v
        for k, v in (params or {}).items()
    }


def ping(driver: Driver, database: str = "neo4j") -> str:
    """The server's version string."""
    records = execute(driver, "admin/get_version", database=database, read=True)
    return str(records[0]["version"])


def wrap(error: Exception) -> GraphStoreError:
    if isinstance(error, ResultError) and isinstance(error.__cause__, Exception):
        # the driver re-raises a result's failure (a ClientError, an outage) on rollback as
        # ResultFailedError: classify the failure itself
        return wrap(error.__cause__)
    if isinstance(error, AuthError):
        return GraphAuthError(str(error))
    if isinstance(error, (*TRANSIENT, OSError)):
        return GraphUnavailableError(f"Neo4j unavailable: {error}")
    return GraphStoreError(f"Neo4j error: {error}")


def execute(
    driver: Driver,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    database: str = "neo4j",
    read: bool = False,
    **placeholders: str,
) -> list[Any]:
    """Run the named statement once (auto-retried by the driver on transient errors).

    ``placeholders`` (``type=``, ``label=``, …) fill the statement's whitelisted names.
    """
    statement = queries.render(name, **placeholders) if placeholders else queries.load(name)
    try:
        result = driver.execute_query(
            statement,
            parameters_=quiet(params),
            database_=database,
            routing_=RoutingControl.READ if read else RoutingControl.WRITE,
        )
    except ClientError as e:
        raise GraphStoreError(f"{name}: {e.message}") from e
    except (Neo4jError, ServiceUnavailable, SessionExpired, OSError, ResultError) as e:
        raise wrap(e) from e
    return list(result.records)


def run_autocommit(
    driver: Driver, name: str, params: Mapping[str, Any] | None = None, *, database: str = "neo4j"
) -> None:
    """Run a named ``CALL { … } IN TRANSACTIONS`` statement (needs an implicit transaction)."""
    try:
        with driver.session(database=database) as session:
            session.run(queries.load(name), quiet(params)).consume()  # type: ignore[arg-type]
    except (Neo4jError, ServiceUnavailable, SessionExpired, OSError, ResultError) as e:
        raise wrap(e) from e


def delete_all(driver: Driver, database: str = "neo4j") -> None:
    run_autocommit(driver, "admin/delete_all", database=database)


def has_procedure(driver: Driver, name: str, database: str = "neo4j") -> bool:
    """Whether the server has the procedure ``name`` (the project's own procedures are built
    by the managed server; other servers may lack them, and callers then use Cypher)."""
    records = execute(driver, "admin/has_procedure", {"name": name}, database=database, read=True)
    return bool(records and records[0]["present"])
