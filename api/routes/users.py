"""Privacy: erasure and personalization consent."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Path, Request
from neo4j import Driver

from api.deps import DriverDep, RecommenderDep, SettingsDep
from api.errors import ApiError, responses
from api.recommender import Recommender
from api.schemas import Consent, ConsentState, Erased, EraseRequest
from api.security import WriteKey
from dpgcn.streams import FEEDBACK_STREAM
from graphstore import users
from graphstore.ids import ID_PATTERN, MAX_ID_LENGTH

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/v1/users",
    tags=["privacy"],
    dependencies=[WriteKey],
    responses=responses(401, 403, 422, 503),
)

#: A user id in a path: the id rule (graphstore/ids.py), matched literally (no slash
#: redirects, no encoded '/'), so a request reaches exactly the id it names.
UserId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, examples=["u7"])
]


def erase_from_stream(client: Any, user_id: str, chunk: int = 1000) -> int:
    """Delete the user's entries from the feedback stream (scanned in chunks)."""
    deleted, start = 0, "-"
    while True:
        entries = client.xrange(FEEDBACK_STREAM, min=start, max="+", count=chunk)
        if not entries:
            return deleted
        mine = [eid for eid, fields in entries if fields.get(b"user_id") == user_id.encode()]
        if mine:
            deleted += int(client.xdel(FEEDBACK_STREAM, *mine))
        if len(entries) < chunk:
            return deleted
        last = entries[-1][0].decode()
        start = "(" + last


@router.delete("/{user_id}", response_model=Erased)
def erase_user(
    user_id: UserId,
    request: Request,
    driver: DriverDep,
    recommender: RecommenderDep,
    settings: SettingsDep,
) -> Erased:
    """Erase a user: the node with all relationships (interactions, searches, segment
    membership) and embeddings, the stored feedback events, queries only this user searched,
    the user's feedback-stream entries and cached answers. Idempotent: erasing again returns
    ``erased: false``. The id stays blocked (a tombstone with its salted hash): later events
    for it are rejected (``user erased``) and nothing re-creates the user. Training artifacts
    of earlier runs are scrubbed by the workers' periodic privacy task (docs/operations.md).

    The path holds the id literally and must follow the id rule (docs/api.md); a user stored
    under an id outside it is erased with ``POST /v1/users/erase``."""
    return _erase(user_id, request, driver, recommender, settings.neo4j.database)


@router.post("/erase", response_model=Erased)
def erase_user_by_body(
    body: EraseRequest,
    request: Request,
    driver: DriverDep,
    recommender: RecommenderDep,
    settings: SettingsDep,
) -> Erased:
    """Erase the user whose id is given in the body, exactly as stored: what
    ``DELETE /v1/users/{user_id}`` does, for any id, also one stored before the id rule
    (with ``/``, ``%``, spaces, unicode, ``.`` or ``..``) that no path can name."""
    return _erase(body.user_id, request, driver, recommender, settings.neo4j.database)


def _erase(
    user_id: str, request: Request, driver: Driver, recommender: Recommender, database: str
) -> Erased:
    result = users.delete_user(driver, user_id, database)
    recommender.popular.clear()
    recommender.popular_queries.clear()
    recommender.segments.clear()
    client = request.app.state.redis
    try:
        recommender.changes.publish([user_id])
        stream_entries = erase_from_stream(client, user_id) if client is not None else 0
    except redis.RedisError as e:
        logger.warning("feedback stream erase failed: %s", type(e).__name__)
        raise ApiError(
            503, "erased from the graph; the feedback stream is unavailable: retry"
        ) from e
    return Erased(
        user_id=user_id,
        erased=result.users > 0,
        events=result.events,
        queries=result.queries,
        stream_entries=stream_entries,
    )


@router.put("/{user_id}/consent", response_model=ConsentState)
def set_consent(
    user_id: UserId,
    consent: Consent,
    driver: DriverDep,
    recommender: RecommenderDep,
    settings: SettingsDep,
) -> ConsentState:
    """Switch personalization on or off. Off: recommendations and query suggestions are
    non-personalized (popular), explanations use no personal history, the user's events are
    not streamed to the online learner, and training exports leave the user out. An unknown
    user is created, so an opt-out can precede any data."""
    value = users.set_consent(driver, user_id, consent.personalization, settings.neo4j.database)
    try:
        recommender.changes.publish([user_id])
    except redis.RedisError as e:
        logger.warning("serving changes append failed: %s", type(e).__name__)
        raise ApiError(
            503, "consent stored, but the other API processes could not be told: retry"
        ) from e
    return ConsentState(user_id=user_id, personalization=value)
