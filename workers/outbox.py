"""The event outbox: stored events whose feedback-stream append failed reach the stream later.

The API commits each event to Neo4j (``streamed = false``), appends it to
``dpgcn.streams.FEEDBACK_STREAM`` and marks it ``streamed``. When Redis is down the append
fails and the API still answers (``streamed: 0``): the event is committed, and it stays in the
outbox until :func:`drain_outbox` appends it. Every worker runs the drain from its heartbeat
thread (at start and every ``DPGCN_RECOVER_EVERY_S``, one worker at a time under a Redis lock),
so the online loop receives every committed event without the client retrying.

Events received in the last :data:`GRACE_S` seconds are left to the API call that may still
be appending them. An append whose mark was lost is appended again on the next drain: delivery
is at least once (the online learner skips an event id it has seen).
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Any

from neo4j import Driver

from dpgcn import streams
from graphstore import events
from workers import context, runs

logger = logging.getLogger(__name__)

LOCK_KEY = "dpgcn:lock:outbox"
LOCK_TTL_S = 120
#: Events younger than this are left to the API request appending them.
GRACE_S = 5.0
BATCH = 1000


def drain_outbox(
    driver: Driver,
    client: Any,
    database: str = "neo4j",
    *,
    grace_s: float = GRACE_S,
    batch: int = BATCH,
    max_batches: int = 100,
) -> int:
    """Append every unstreamed event (older than ``grace_s``) to the feedback stream, its
    user to the serving-changes stream, and mark it streamed; returns how many. Raises the
    Redis or graph error (nothing is marked that was not appended)."""
    total = 0
    for _ in range(max_batches):
        rows = events.unstreamed_events(driver, time.time() - grace_s, batch, database)
        if not rows:
            break
        pipe = client.pipeline(transaction=False)
        for r in rows:
            pipe.xadd(
                streams.FEEDBACK_STREAM,
                streams.feedback_entry(r.id, r.user_id, r.type, r.item_id, r.query, r.ts),
            )
        for user in dict.fromkeys(r.user_id for r in rows):
            pipe.xadd(
                streams.SERVING_CHANGES_STREAM,
                {"user_id": user},
                maxlen=streams.SERVING_CHANGES_MAXLEN,
                approximate=True,
            )
        pipe.execute()
        events.mark_streamed(driver, [r.id for r in rows], database)
        total += len(rows)
        if len(rows) < batch:
            break
    if total:
        logger.info("outbox: %d stored events appended to the feedback stream", total)
    return total


@lru_cache(maxsize=1)
def _driver() -> Driver:
    """The drain's own driver: it runs in the worker's main process, whose pool children
    (prefork) must not inherit an open :func:`workers.context.driver`."""
    from dpgcn.services import neo4j_connection
    from dpgcn.settings import get_settings
    from graphstore.driver import connect

    conn = neo4j_connection(get_settings())
    return connect(conn.uri, conn.user, conn.password)


def drain_once(worker_id: str) -> int | None:
    """The drain under the outbox lock (``None`` when another worker holds it)."""
    client = runs.client()
    if not client.set(LOCK_KEY, worker_id, nx=True, ex=LOCK_TTL_S):
        return None
    try:
        return drain_outbox(_driver(), client, context.database())
    finally:
        if client.get(LOCK_KEY) == worker_id:
            client.delete(LOCK_KEY)
