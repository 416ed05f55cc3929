"""Notice a restored (replaced) Neo4j store and recover without a restart.

The driver's ``execute_query`` chains every query after the bookmarks of the last writes it
saw. A restored store never had those transactions, so every read would wait for them until
the server's bookmark timeout, over and over (the API answered 503 for minutes after a
hand-made ``neo4j-admin database load``). :class:`StoreWatch` reads the store's identity
(``admin/get_store_id``: its id and creation time, and the epoch ``dpgcn backup restore``
sets once it has replayed the erasure and revocation logs) every few seconds *without*
bookmarks; when it changes, the driver's query bookmark manager is replaced by an empty one
and the process's caches of graph state (the API-key table, the serving snapshot, the active
version) are dropped, so the next answers come from the restored graph.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from neo4j import Driver, GraphDatabase, RoutingControl

from graphstore import queries

logger = logging.getLogger(__name__)

#: Seconds between two reads of the store's identity.
INTERVAL_S = 2.0


def read_store_id(driver: Driver, database: str) -> tuple[str, str, str | None]:
    """The store's (id, creation time, restore epoch), read without bookmarks (never waits
    for them)."""
    records = driver.execute_query(
        queries.load("admin/get_store_id"),
        database_=database,
        routing_=RoutingControl.READ,
        bookmark_manager_=None,
    ).records
    r = records[0]
    epoch = r["epoch"]
    return str(r["store_id"]), str(r["created"]), None if epoch is None else str(epoch)


def reset_bookmarks(driver: Driver) -> None:
    """Give ``driver.execute_query`` a new, empty bookmark manager (the driver offers no
    public setter; sessions opened without bookmarks are unaffected anyway)."""
    driver._query_bookmark_manager = GraphDatabase.bookmark_manager()  # type: ignore[attr-defined]


class StoreWatch:
    """A daemon thread that calls :func:`reset_bookmarks` and ``on_change`` when the store's
    identity differs from the one last read (a failed read changes nothing)."""

    def __init__(
        self,
        driver: Driver,
        database: str,
        on_change: Callable[[], None],
        interval_s: float = INTERVAL_S,
    ) -> None:
        self.driver, self.database = driver, database
        self.on_change, self.interval_s = on_change, interval_s
        self.store: tuple[str, str, str | None] | None = None
        self.changes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Read the identity once; True when it changed (and the reset was done)."""
        try:
            current = read_store_id(self.driver, self.database)
        except Exception as e:  # Neo4j away (being restored): try again later
            logger.debug("store id unreadable: %s", type(e).__name__)
            return False
        previous, self.store = self.store, current
        if previous is None or previous == current:
            return False
        logger.warning("the Neo4j store changed (%s -> %s): resetting bookmarks", previous, current)
        self.changes += 1
        reset_bookmarks(self.driver)
        try:
            self.on_change()
        except Exception as e:  # caches are refreshed again on their own schedule
            logger.warning("refresh after the store change failed: %s", type(e).__name__)
        return True

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="dpgcn-storewatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(self.interval_s)
