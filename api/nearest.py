"""Similar items and query suggestions: nearest neighbours by cosine, ranked from memory.

Both rank the active version's vectors held by the API process, exactly
(:func:`api.scoring.nearest`: cosine against unit columns, the recommendations' block top-k),
in the scoring thread's batches when the snapshot is on; scores are on the scale of Neo4j's
cosine vector index, ``(1 + cosine) / 2``, so answers read as they did when the vector index
answered (the index was approximate: it could miss a neighbour, this cannot).

* **Similar items** (``GET /v1/items/{id}/similar``): the item's vector against the item
  matrix, the item itself left out. The matrix is the serving snapshot's while it is of the
  active version and read after its ``refreshed_at`` (as last read), else the active
  version's item index (:meth:`api.recommender.Recommender.index`, read once per version and
  ``refreshed_at``): items whose vectors were written after activation are in it once the
  new ``refreshed_at`` was read, within ``refresh_s`` plus the item read. An item not in the
  matrix costs a Neo4j read of ``refreshed_at`` (moved: the version and its items are read
  again at once, so a refreshed item is answered on its first request) and one of the item:
  404 when no such item exists, else an empty list (no vector of the version).
* **Query suggestions** (``GET /v1/users/{id}/query-suggestions``): the user's vector against
  the version's query vectors (read in pages with the snapshot, and again with the items on a
  refresh; the active version's query index, read once per version and ``refreshed_at``,
  while the snapshot is not current); with ``prefix``, the queries whose text starts with
  it, all of them scored, best first, ties by text. The user's vector comes from the
  snapshot when it is current and holds the user unchanged, else from the graph. Users
  without a vector of the version, with personalization off, or a version without query
  vectors get the most searched queries (cached).
"""

from __future__ import annotations

import logging

import numpy as np
from fastapi.concurrency import run_in_threadpool

from api.errors import ApiError
from api.recommender import Recommender
from api.schemas import QuerySuggestion, QuerySuggestions, ScoredItem, SimilarItems
from api.scoring import Nearest, nearest, nearest_among
from api.snapshot import Cosine, ItemIndex, QueryIndex
from graphstore import serving
from graphstore.errors import GraphStoreError, GraphUnavailableError

logger = logging.getLogger(__name__)


async def rank_nearest(
    recommender: Recommender, target: Cosine, vec: np.ndarray, k: int, exclude: int = -1
) -> Nearest:
    """:func:`api.scoring.nearest` for one vector: in the scoring thread's next batch, or in
    the thread pool when the snapshot (and with it the scoring thread) is off."""
    scorer = recommender.scorer
    if scorer is not None:
        return await scorer.nearest(target, vec, k, exclude)
    ranked = await run_in_threadpool(nearest, target, vec[None], [k], [exclude])
    return ranked[0]


def _active_items(recommender: Recommender) -> tuple[str, ItemIndex]:
    active = recommender.active()
    if active is None:
        raise ApiError(503, "no model version is active yet")
    return active.version, recommender.index(active)


def _look_again(
    recommender: Recommender, database: str, item_id: str, version: str
) -> tuple[str, ItemIndex, bool]:
    """For an item not in ``version``'s matrix: ``(version, items, exists)`` after reading
    the active version and its items again if ``refreshed_at`` moved (vectors written since)."""
    recommender.refreshed_since(version)
    version, items = _active_items(recommender)
    if item_id in items.position:
        return version, items, True
    return version, items, serving.item_exists(recommender.driver, item_id, database)


async def similar_items(
    recommender: Recommender, database: str, item_id: str, k: int
) -> SimilarItems:
    """The ``k`` items nearest to ``item_id`` (see the module docstring)."""
    snap = recommender.current_snapshot()
    if snap is not None:
        version, items = snap.version, snap.items
    else:
        version, items = await run_in_threadpool(_active_items, recommender)
    row = items.position.get(item_id)
    if row is None:
        version, items, exists = await run_in_threadpool(
            _look_again, recommender, database, item_id, version
        )
        if not exists:
            raise ApiError(404, f"unknown item {item_id!r}")
        row = items.position.get(item_id)
        if row is None:
            return SimilarItems(item_id=item_id, model_version=version, items=[])
    rows, scores = await rank_nearest(recommender, items.cosine, items.matrix[row], k, row)
    return SimilarItems(
        item_id=item_id,
        model_version=version,
        items=[
            ScoredItem(item_id=items.ids[r], title=items.titles[r], score=s)
            for r, s in zip(rows.tolist(), scores.tolist(), strict=True)
        ],
    )


def _from_graph(
    recommender: Recommender, database: str, user_id: str
) -> tuple[str | None, QueryIndex | None, np.ndarray | None]:
    """``(version, query index, user's vector)`` of the active version, the user read from the
    graph (vector None: none of that version, or personalization off)."""
    active = recommender.active()
    if active is None:
        return None, None, None
    state = serving.get_user_state(recommender.driver, user_id, active, database)
    vector = state.vector if state.exists and state.consent else None
    try:
        queries: QueryIndex | None = recommender.queries(active)
    except GraphUnavailableError:
        raise
    except GraphStoreError as e:  # the query vectors unreadable: popular queries instead
        logger.warning("query vectors of %s unreadable: %s", active.version, type(e).__name__)
        queries = None
    return active.version, queries, vector


async def suggest_queries(
    recommender: Recommender, database: str, user_id: str, k: int, prefix: str
) -> QuerySuggestions:
    """The query suggestions for ``user_id`` (see the module docstring); ``prefix`` is
    normalized ('' for none)."""
    snap = recommender.current_snapshot()
    scorer = recommender.scorer
    queries: QueryIndex | None
    if snap is not None and snap.queries is not None and scorer and scorer.holds(snap, user_id):
        version: str | None = snap.version
        queries = snap.queries
        vector: np.ndarray | None = snap.users[snap.user_pos[user_id]]
    else:
        version, queries, vector = await run_in_threadpool(
            _from_graph, recommender, database, user_id
        )
    found: list[tuple[str, str, float]] | None = None
    if (
        queries is not None
        and vector is not None
        and queries.ids
        and vector.shape[0] == queries.dim
    ):
        if prefix:  # (a short prefix may match many queries: off the event loop)
            rows, scores = await run_in_threadpool(
                nearest_among, queries.cosine, vector, queries.starting_with(prefix), k
            )
        else:
            rows, scores = await rank_nearest(recommender, queries.cosine, vector, k)
        found = [
            (queries.ids[r], queries.texts[r], s)
            for r, s in zip(rows.tolist(), scores.tolist(), strict=True)
        ]
    personalized = found is not None
    if found is None:
        found = await run_in_threadpool(_popular_queries, recommender, database, prefix, k)
    return QuerySuggestions(
        user_id=user_id,
        model_version=version,
        personalized=personalized,
        prefix=prefix or None,
        queries=[QuerySuggestion(query_id=q, text=t, score=s) for q, t, s in found],
    )


def _popular_queries(
    recommender: Recommender, database: str, prefix: str, k: int
) -> list[tuple[str, str, float]]:
    ranked = recommender.popular_queries.get(
        prefix, lambda: serving.get_popular_queries(recommender.driver, 50, prefix, database)
    )
    return ranked[:k]
