"""The in-memory serving snapshot of one model version.

A request for a known user would otherwise cost Neo4j round trips (the user's vector and
history, then the graph evidence of each recommended item). Instead, each API process holds a
**snapshot** of the active version: the item matrix with each item's categories and terms,
and every consenting user's vector, seen items (newest first, with the type of the newest
interaction and whether bought), newest searches and segment; plus the searched queries' links
and each segment's purchase counts. It is read from Neo4j in pages when the version becomes
active, in a background thread; the previous snapshot is served until the new one is complete,
and an answer never mixes versions: user vector, item matrix, policy, seen items and
explanations all come from one snapshot. The version's query vectors (with the query texts)
are read into it too, in pages; similar items and query suggestions are ranked from it by
cosine (:func:`api.scoring.nearest`, :mod:`api.nearest`). The per-user top-N lists computed
from it (:mod:`api.serve`) are cached in the snapshot itself, so they go with it.

When the version's items are refreshed (vectors written for items created after activation,
then ``refreshed_at`` set on its Model node), :func:`with_items` swaps in the new item index
(and the query index read again: the refresh writes new queries' vectors too) and remaps the
users' seen items; the cached lists are dropped with the old snapshot.
"""

from __future__ import annotations

import logging
import time
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cachetools import LRUCache

from graphstore import serving
from graphstore.serving import ItemVectors, QueryVectors, SearchLinks
from graphstore.writeback import ActiveModel

logger = logging.getLogger(__name__)

#: Items per block of the exact block-maximum top-k (api/scoring.py).
BLOCK = 128
#: Interaction types, by the code ``Snapshot.seen_how`` stores (bit 2: ever bought).
HOW = ("VIEWED", "CLICKED", "PURCHASED", "RATED")
BOUGHT = 4
#: Per-user top-N lists held per snapshot (least recently used dropped first).
TOPLISTS = 50_000


@dataclass(frozen=True)
class Cosine:
    """Vectors ranked by cosine (:func:`api.scoring.nearest`): ``unit`` ``[N', D]`` holds the
    ``size`` vectors scaled to unit length, padded like :func:`padded_rows`; ``zero`` the rows
    whose vector is zero (no cosine: never ranked)."""

    size: int
    unit: np.ndarray
    zero: np.ndarray


def cosine_rows(matrix: np.ndarray) -> Cosine:
    norms = np.linalg.norm(matrix, axis=1)
    unit = matrix / np.where(norms > 0, norms, 1.0)[:, None]
    return Cosine(len(matrix), padded_rows(unit), np.flatnonzero(norms == 0))


@dataclass(frozen=True)
class ItemIndex:
    """The items of one version: ``ids[r]`` has ``matrix[r]``, ``categories[r]``, ``terms[r]``."""

    version: str
    ids: list[str]
    titles: list[str | None]
    matrix: np.ndarray  # [I, D]
    position: dict[str, int]
    #: ``matrix`` with zero rows added up to a multiple of :data:`BLOCK`, ``[I', D]``
    #: C-contiguous (see :func:`padded_rows`).
    padded: np.ndarray
    categories: list[tuple[str, ...]]
    terms: list[frozenset[str]]
    #: ``matrix`` for similar items.
    cosine: Cosine


def padded_rows(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` ``[N, D]`` as the scoring product wants it: float32, C-contiguous, padded
    with zero rows to a multiple of :data:`BLOCK` for the block top-k."""
    n, dim = matrix.shape
    rows = np.zeros((-(-n // BLOCK) * BLOCK, dim), np.float32)
    rows[:n] = matrix
    return rows


def item_index(version: str, items: ItemVectors) -> ItemIndex:
    return ItemIndex(
        version,
        items.ids,
        items.titles,
        items.matrix,
        {i: k for k, i in enumerate(items.ids)},
        padded_rows(items.matrix),
        items.categories,
        items.terms,
        cosine_rows(items.matrix),
    )


@dataclass(frozen=True)
class QueryIndex:
    """The queries of one version for suggestions: ``ids[r]`` has ``texts[r]`` (its text, else
    its id) and column ``r`` of ``cosine``; ``by_text`` the rows of the queries that have a
    text, ordered by it, and ``sorted_texts`` those texts (prefix completion)."""

    version: str
    ids: list[str]
    texts: list[str]
    dim: int
    cosine: Cosine
    by_text: np.ndarray
    sorted_texts: list[str]

    def starting_with(self, prefix: str) -> np.ndarray:
        """Rows of the queries whose text starts with ``prefix`` (non-empty), by text."""
        lo = bisect_left(self.sorted_texts, prefix)
        hi = bisect_left(self.sorted_texts, prefix[:-1] + chr(ord(prefix[-1]) + 1))
        return self.by_text[lo:hi]


def query_index(version: str, queries: QueryVectors) -> QueryIndex:
    named = sorted((t, r) for r, t in enumerate(queries.texts) if t is not None)
    return QueryIndex(
        version,
        queries.ids,
        [t if t is not None else i for i, t in zip(queries.ids, queries.texts, strict=True)],
        queries.matrix.shape[1],
        cosine_rows(queries.matrix),
        np.fromiter((r for _, r in named), np.int64, len(named)),
        [t for t, _ in named],
    )


def read_queries(
    driver: Any, active: ActiveModel, *, database: str = "neo4j", page: int = 20_000
) -> QueryIndex:
    """The query index of ``active`` read from the graph (:func:`serving.get_query_vectors`)."""
    vectors = serving.get_query_vectors(driver, active, page=page, database=database)
    return query_index(active.version, vectors)


@dataclass(frozen=True)
class Profile:
    """What explanations need about one user (from the snapshot or read from the graph)."""

    seen: Sequence[int]  # item rows, newest first
    how: Sequence[str]  # per seen item: the newest interaction's type
    bought: frozenset[int]  # item rows
    searches: Sequence[str]  # query ids, newest first
    segment: str | None


@dataclass(frozen=True)
class Snapshot:
    """Everything a personalized answer needs for the users of one model version."""

    version: str
    items: ItemIndex
    user_pos: dict[str, int]
    users: np.ndarray  # [U, D] float32
    #: Seen item rows of user ``u``: ``seen_rows[seen_ptr[u]:seen_ptr[u + 1]]``, newest first;
    #: ``seen_how`` beside them (index into :data:`HOW`, plus :data:`BOUGHT` when bought).
    seen_ptr: np.ndarray
    seen_rows: np.ndarray
    seen_how: np.ndarray
    #: Query ids of user ``u``'s newest searches: ``searches[u]`` (empty tuple: none).
    searches: list[tuple[str, ...]]
    #: Segment of user ``u`` (index into ``segment_ids``; -1: none).
    segment_of: np.ndarray
    segment_ids: list[str]
    links: dict[str, SearchLinks]
    segment_buys: dict[str, tuple[str | None, dict[str, int]]]
    #: ``time.monotonic()`` when the load began: changes learnt before it are in the snapshot.
    started: float
    #: The Model node's ``refreshed_at`` the item index was read after (None: never set).
    refreshed_at: int | None = None
    #: The version's query vectors (None: not read with this snapshot).
    queries: QueryIndex | None = None
    #: Cached answers by ``(user id, exclude_seen, category, policy version)`` (api/serve.py).
    toplists: LRUCache[tuple[str, bool, str | None, int | None], Any] = field(
        default_factory=lambda: LRUCache(TOPLISTS), compare=False, repr=False
    )

    def seen(self, row: int) -> np.ndarray:
        return self.seen_rows[self.seen_ptr[row] : self.seen_ptr[row + 1]]

    def seen_of(
        self, rows: np.ndarray, limit: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The seen items of several users at once (no loop over the users): ``(owner,
        position, item)`` arrays, one entry per seen item, where ``owner`` indexes ``rows``
        and ``position`` counts from the newest (0); at most ``limit`` per user."""
        starts = self.seen_ptr[rows]
        lens = self.seen_ptr[rows + 1] - starts
        if limit is not None:
            lens = np.minimum(lens, limit)
        owner = np.repeat(np.arange(len(rows)), lens)
        position = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        return owner, position, self.seen_rows[np.repeat(starts, lens) + position]

    def profile(self, row: int) -> Profile:
        a, b = int(self.seen_ptr[row]), int(self.seen_ptr[row + 1])
        seen = self.seen_rows[a:b].tolist()
        codes = self.seen_how[a:b].tolist()
        segment = int(self.segment_of[row])
        return Profile(
            seen=seen,
            how=[HOW[c & 3] for c in codes],
            bought=frozenset(r for r, c in zip(seen, codes, strict=True) if c & BOUGHT),
            searches=self.searches[row],
            segment=self.segment_ids[segment] if segment >= 0 else None,
        )


def load_snapshot(
    driver: Any,
    active: ActiveModel,
    items: ItemIndex,
    *,
    database: str = "neo4j",
    page: int = 20_000,
    refreshed_at: int | None = None,
) -> Snapshot:
    """Read the users of ``active`` (see :func:`graphstore.serving.iter_user_snapshot`), the
    searched queries' links and the version's segment purchases into a snapshot over
    ``items`` (which must be the same version)."""
    if items.version != active.version:
        raise ValueError(f"item index of {items.version}, snapshot of {active.version}")
    started = time.monotonic()
    ids: list[str] = []
    chunks: list[np.ndarray] = []
    ptr = array("q", [0])
    rows = array("i")
    hows = array("b")
    searches: list[tuple[str, ...]] = []
    segment_names: dict[str, int] = {}
    segment_of = array("i")
    code = {h: n for n, h in enumerate(HOW)}
    pos = items.position
    dim = items.matrix.shape[1]
    for p in serving.iter_user_snapshot(driver, active, page=page, database=database):
        if p.vectors.shape[1] != dim:  # a vector of another shape: not servable from here
            continue
        ids += p.ids
        chunks.append(p.vectors)
        for seen, how, bought in zip(p.seen, p.how, p.bought, strict=True):
            for i, h, b in zip(seen, how, bought, strict=True):
                r = pos.get(i)
                if r is not None:
                    rows.append(r)
                    hows.append(code.get(h, 0) | (BOUGHT if b else 0))
            ptr.append(len(rows))
        empty: tuple[str, ...] = ()
        searches += [tuple(q) if q else empty for q in p.searches]
        segment_of.extend(
            segment_names.setdefault(s, len(segment_names)) if s else -1 for s in p.segments
        )
    users = np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)
    return Snapshot(
        version=active.version,
        items=items,
        user_pos={u: k for k, u in enumerate(ids)},
        users=np.ascontiguousarray(users, dtype=np.float32),
        seen_ptr=np.frombuffer(ptr, dtype=np.int64),
        seen_rows=np.frombuffer(rows, dtype=np.int32),
        seen_how=np.frombuffer(hows, dtype=np.int8),
        searches=searches,
        segment_of=np.frombuffer(segment_of, dtype=np.int32),
        segment_ids=list(segment_names),
        links=serving.get_search_links(driver, database),
        segment_buys=serving.get_segment_purchases(driver, active.version, database),
        started=started,
        refreshed_at=refreshed_at,
        queries=read_queries(driver, active, database=database, page=page),
    )


def with_items(
    snap: Snapshot,
    items: ItemIndex,
    refreshed_at: int | None,
    queries: QueryIndex | None = None,
) -> Snapshot | None:
    """``snap`` over a newer item index of the same version (items added) and ``queries`` (None:
    the snapshot's), its users' seen items remapped to the new rows, without cached answers;
    None when an item of the old index is gone from the new one (then the snapshot must be
    read again)."""
    if items.version != snap.version:
        raise ValueError(f"item index of {items.version}, snapshot of {snap.version}")
    new_row = np.fromiter(
        (items.position.get(i, -1) for i in snap.items.ids), np.int64, len(snap.items.ids)
    )
    if (new_row < 0).any():
        return None
    return Snapshot(
        version=snap.version,
        items=items,
        user_pos=snap.user_pos,
        users=snap.users,
        seen_ptr=snap.seen_ptr,
        seen_rows=new_row[snap.seen_rows].astype(np.int32),
        seen_how=snap.seen_how,
        searches=snap.searches,
        segment_of=snap.segment_of,
        segment_ids=snap.segment_ids,
        links=snap.links,
        segment_buys=snap.segment_buys,
        started=snap.started,
        refreshed_at=refreshed_at,
        queries=snap.queries if queries is None else queries,
    )
