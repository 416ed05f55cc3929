"""Feedback events: stored in Neo4j idempotently, then appended to the feedback stream."""

from __future__ import annotations

import logging

import redis
from fastapi import APIRouter

from api.deps import DriverDep, RecommenderDep, RedisDep, SettingsDep
from api.errors import ApiError, responses
from api.schemas import EventBatch, EventsAccepted, RejectedEvent
from api.security import WriteKey
from dpgcn.streams import FEEDBACK_FIELDS, FEEDBACK_STREAM, feedback_entry
from graphstore import events
from graphstore.events import EventRow
from graphstore.sources import text

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/v1",
    tags=["events"],
    dependencies=[WriteKey],
    responses=responses(401, 403, 422, 503),
)


@router.post("/events", response_model=EventsAccepted)
def post_events(
    batch: EventBatch,
    driver: DriverDep,
    redis_client: RedisDep,
    recommender: RecommenderDep,
    settings: SettingsDep,
) -> EventsAccepted:
    """Record a batch of feedback events (search, view, click, purchase).

    Events are written to Neo4j in one transaction, idempotently by ``id``: an id stored
    before changes nothing (``duplicates``), so a retried batch is safe. New events count up
    the user's ``SEARCHED``/``VIEWED``/``CLICKED``/``PURCHASED`` relationships (a click with a
    ``query`` also counts up ``LED_TO``); unknown users are created, erased ones never. Events
    naming an unknown item, events of an erased user (``user erased``), or searches with no
    content words, are ``rejected`` (not stored). Stored events of
    users who allow personalization are then appended to the Redis stream ``dpgcn:feedback``
    (``streamed`` counts them). When Redis is down the events are still stored and accepted
    (``streamed`` is 0 for them): they stay in the outbox and a worker appends them once Redis
    is back (workers.outbox), so the client need not retry. Retrying changes nothing either.
    """
    if len(batch.events) > settings.api.max_events:
        raise ApiError(422, f"a batch holds at most {settings.api.max_events} events")
    seen: set[str] = set()
    rows: list[EventRow] = []
    rejected: list[RejectedEvent] = []
    for n, e in enumerate(batch.events):
        if e.id in seen:
            raise ApiError(422, f"events[{n}].id {e.id!r} appears twice in the batch")
        seen.add(e.id)
        query = text.normalize_query(e.query) if e.query else None
        if e.type == "search" and not query:
            rejected.append(RejectedEvent(id=e.id, reason="the query has no content words"))
            continue
        rows.append(
            EventRow(
                id=e.id,
                user_id=e.user_id,
                type=e.type,
                ts=e.ts,
                item_id=e.item_id,
                query=query or None,
                query_text=" ".join(e.query.lower().split()) if e.query else None,
            )
        )
    db = settings.neo4j.database
    result = events.write_events(driver, rows, db)
    rejected += [RejectedEvent(id=i, reason=why) for i, why in result.skipped.items()]
    # Committed: from here on the answer is "accepted"; what Redis does not take now stays in
    # the outbox (Event.streamed = false) and a worker appends it later (workers.outbox).
    # (the outbox also re-publishes the users' serving changes, so when those cannot be
    # published the stream append is left to it as well)
    published = True
    try:  # the users' serving state changed: every API process reads them from the graph now
        recommender.changes.publish(r.user_id for r in rows)
    except redis.RedisError as e:
        published = False
        logger.warning("serving changes append failed (%s); left to the outbox", type(e).__name__)
    by_id = {r.id: r for r in rows}
    streamed = 0
    if result.to_stream and published:
        try:
            pipe = redis_client.pipeline(transaction=False)
            for event_id in result.to_stream:
                r = by_id[event_id]
                entry = feedback_entry(r.id, r.user_id, r.type, r.item_id, r.query, r.ts)
                assert tuple(entry) == FEEDBACK_FIELDS
                pipe.xadd(FEEDBACK_STREAM, entry)
            pipe.execute()
        except redis.RedisError as e:
            logger.warning(
                "feedback stream append failed (%s): %d events left to the outbox",
                type(e).__name__,
                len(result.to_stream),
            )
        else:
            events.mark_streamed(driver, result.to_stream, db)
            streamed = len(result.to_stream)
    return EventsAccepted(
        accepted=len(result.new),
        duplicates=len(result.duplicates),
        rejected=rejected,
        streamed=streamed,
    )
