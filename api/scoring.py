"""The one scorer: policy adjustment, one matrix product per batch, exact top-k.

Every personalized answer is ranked by :func:`rank` — users of the snapshot in batches by the
:class:`Scorer` thread, users read from the graph (not in the snapshot, changed since, cold
start) one at a time by the request's worker thread. For a batch: one policy-actor call, one
product ``M Uᵀ`` of the padded item rows with the batch's vectors (the item matrix is read
once per batch instead of once per request; item-major, because BLAS streams a tall ``[I, D]``
matrix against a few columns faster than the transposed product: docs/benchmarks-api.md), seen items
masked, then an exact top-k per user through block maxima (the top k items lie in the k
blocks of 128 items with the largest maxima; see :func:`top_k_batch`).

Similar items and query suggestions are ranked by the same thread, in the same batches, by
:func:`nearest`: cosine against the unit columns of the version's item or query vectors
(:class:`api.snapshot.Cosine`), one product per batch and target, the same block top-k.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from api import metrics
from api.changes import Changes
from api.snapshot import BLOCK, Cosine, ItemIndex, Snapshot
from training.inference import PolicyAdjuster

logger = logging.getLogger(__name__)


def block_maxima(scores: np.ndarray) -> np.ndarray:
    """``[N / BLOCK, B]``: the largest score of each block of :data:`BLOCK` consecutive items,
    per column of ``scores`` ``[N, B]``, by halving: one vectorised maximum of two halves at
    a time (numpy's ``max`` over the middle axis of ``[blocks, BLOCK, B]`` does not
    vectorise; docs/benchmarks-api.md)."""
    n, b = scores.shape
    half = scores.reshape(n // BLOCK, BLOCK, b)
    width = BLOCK // 2
    half = np.maximum(half[:, :width], half[:, width:])
    while width > 1:
        width //= 2
        np.maximum(half[:, :width], half[:, width : 2 * width], out=half[:, :width])
    return half[:, 0]


def top_k_batch(scores: np.ndarray, ks: Sequence[int]) -> list[np.ndarray]:
    """Per column ``r`` of ``scores`` ``[N, B]`` (item-major: the layout of the product of the
    padded item rows with the batch's vectors), the rows of its ``ks[r]`` largest finite
    scores, best first (fewer when fewer are finite). Exact: with ``N`` a multiple of
    :data:`BLOCK`, the k best items of a column lie in the k blocks with the largest maxima
    (a block holding one of them has a maximum at least the k-th best score, and at most k
    blocks can)."""
    n, b = scores.shape
    out: list[np.ndarray] = []
    if n == 0:
        return [np.zeros(0, np.int64) for _ in ks]
    blocks = n // BLOCK if n % BLOCK == 0 else 0
    maxima = block_maxima(scores).T if blocks else None  # [B, blocks]
    offsets = np.arange(BLOCK)
    ks = list(ks)
    if maxima is not None and b > 1 and len(set(ks)) == 1 and ks[0] < blocks // 4:
        k = ks[0]  # the usual case, one k for the whole batch: no loop over the columns
        best = np.argpartition(-maxima, k - 1, axis=1)[:, :k]
        rows = (best[:, :, None] * BLOCK + offsets).reshape(b, -1)
        sub = scores[rows, np.arange(b)[:, None]]
        top = np.argpartition(-sub, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(sub, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        chosen = np.take_along_axis(rows, np.take_along_axis(top, order, axis=1), axis=1)
        finite = np.isfinite(np.take_along_axis(top_scores, order, axis=1))
        return [chosen[r][finite[r]] for r in range(b)]
    for r, k in enumerate(ks):
        column = scores[:, r]
        if maxima is not None and k < blocks // 4:
            best = np.argpartition(-maxima[r], k - 1)[:k]
            candidates = (best[:, None] * BLOCK + offsets).ravel()
        else:
            candidates = np.arange(n)
        part = column[candidates]
        kk = min(k, len(candidates))
        pick = np.argpartition(-part, kk - 1)[:kk]
        pick = pick[np.argsort(-part[pick], kind="stable")]
        out.append(candidates[pick[np.isfinite(part[pick])]])
    return out


def nearest(
    target: Cosine, vecs: np.ndarray, ks: Sequence[int], exclude: Sequence[int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per row of ``vecs`` ``[B, D]``: the rows of ``target`` nearest by cosine, the ``k`` of
    ``ks`` best first, leaving out row ``exclude`` (-1: none), with their scores on the scale of
    Neo4j's cosine vector index and ``vector.similarity.cosine``: ``(1 + cosine) / 2``."""
    vecs = np.asarray(vecs, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    sims = target.unit @ np.ascontiguousarray((vecs / np.where(norms > 0, norms, 1.0)).T)
    sims[target.size :] = -np.inf
    sims[target.zero] = -np.inf
    skip = np.asarray(exclude, dtype=np.int64)
    at = np.flatnonzero(skip >= 0)
    sims[skip[at], at] = -np.inf
    tops = top_k_batch(sims, ks)
    return [(top, (1.0 + sims[top, r]) / 2.0) for r, top in enumerate(tops)]


def nearest_among(
    target: Cosine, vec: np.ndarray, rows: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` of ``rows`` (of ``target``) nearest to ``vec`` by cosine, best first, ties in
    the order of ``rows``; scores as :func:`nearest`'s."""
    vec = np.asarray(vec, dtype=np.float32)
    norm = float(np.linalg.norm(vec))
    sims = target.unit[rows] @ (vec / (norm if norm > 0 else 1.0))
    sims[np.isin(rows, target.zero)] = -np.inf
    order = np.argsort(-sims, kind="stable")[:k]
    order = order[np.isfinite(sims[order])]
    return rows[order], (1.0 + sims[order]) / 2.0


@dataclass(frozen=True)
class Want:
    """One ranking asked for: ``k`` items, seen ones left out or not, among ``rows`` (a
    category's item rows) or all items (None)."""

    k: int
    exclude_seen: bool
    rows: np.ndarray | None = None


Seen = tuple[np.ndarray, np.ndarray, np.ndarray]


def seen_arrays(rows: Sequence[Sequence[int]]) -> Seen:
    """``(owner, position, item)`` of each user's seen item rows (newest first), the form
    :meth:`api.snapshot.Snapshot.seen_of` gives."""
    lens = [len(r) for r in rows]
    owner = np.repeat(np.arange(len(rows)), lens)
    position = np.concatenate([np.arange(n) for n in lens]) if rows else np.zeros(0, np.int64)
    item = np.fromiter((i for r in rows for i in r), np.int64, sum(lens))
    return owner, position.astype(np.int64), item


def rank(
    items: ItemIndex,
    vecs: np.ndarray,
    wants: Sequence[Want],
    seen: Seen,
    adjuster: PolicyAdjuster | None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per row of ``vecs`` ``[B, D]`` (a user's vector; ``seen`` their seen item rows): the
    item rows and scores of its ranking, best first. With ``adjuster`` (the version's DDPG
    policy) each vector is first adjusted from the user's newest seen items."""
    owner, position, item = seen
    if adjuster is not None:
        # each user's n_hist newest items, oldest first, right-aligned (-1 = none)
        n_hist = adjuster.state_history
        hist = np.full((len(vecs), n_hist), -1, np.int64)
        recent = position < n_hist
        hist[owner[recent], n_hist - 1 - position[recent]] = item[recent]
        vecs = adjuster.adjust(vecs, items.matrix, hist)
    n_items = len(items.ids)
    out: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0, np.int64), np.zeros(0))] * len(wants)
    plain = [j for j, w in enumerate(wants) if w.rows is None]
    if plain:
        scores = items.padded @ np.ascontiguousarray(vecs[plain].T)  # [I', B]
        scores[n_items:] = -np.inf
        at = np.full(len(wants), -1, np.int64)
        at[plain] = np.arange(len(plain))
        masked = at[owner] >= 0
        excluding = np.asarray([w.exclude_seen for w in wants], bool)[owner] & masked
        scores[item[excluding], at[owner[excluding]]] = -np.inf
        tops = top_k_batch(scores, [wants[j].k for j in plain])
        for i, j in enumerate(plain):
            out[j] = (tops[i], scores[tops[i], i])
    for j, w in enumerate(wants):
        if w.rows is None:
            continue
        s = items.matrix[w.rows] @ vecs[j]
        if w.exclude_seen:
            s[np.isin(w.rows, item[owner == j])] = -np.inf
        top = top_k_batch(s[:, None], [w.k])[0]
        out[j] = (w.rows[top], s[top])
    return out


@dataclass(frozen=True)
class Answer:
    """A personalized answer: item rows of ``items``, best first."""

    strategy: str  # "policy" | "embedding"
    policy_version: int | None
    rows: np.ndarray  # int64
    scores: np.ndarray  # float32
    items: ItemIndex
    version: str
    #: The snapshot that ranked it (its users' profiles explain it); None: ranked from a
    #: user read from the graph.
    snapshot: Snapshot | None = None


@dataclass
class _Ask:
    user_id: str
    k: int
    exclude_seen: bool
    category: str | None
    future: asyncio.Future[Answer | None]
    loop: asyncio.AbstractEventLoop


Nearest = tuple[np.ndarray, np.ndarray]


@dataclass
class _Near:
    target: Cosine
    vec: np.ndarray
    k: int
    exclude: int
    future: asyncio.Future[Nearest]
    loop: asyncio.AbstractEventLoop


class Scorer:
    """Ranks the waiting requests for the snapshot's users in batches.

    One scoring thread fed by a queue takes every request waiting when it is free, so while
    one batch is ranked the next accumulates, and the matrix product (BLAS, GIL released)
    overlaps the event loop. Similar items and query suggestions (:meth:`nearest`) join the
    same batches.
    """

    def __init__(
        self,
        changes: Changes,
        policy_for: Callable[[str], tuple[int | None, PolicyAdjuster | None]],
        category_rows: Callable[[ItemIndex, str], np.ndarray | None],
        max_batch: int = 64,
    ) -> None:
        self.changes = changes
        self.policy_for = policy_for
        self.category_rows = category_rows
        self.max_batch = max_batch
        self.snapshot: Snapshot | None = None
        self._queue: queue.SimpleQueue[_Ask | _Near | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dpgcn-scorer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)
            self._thread = None

    def holds(self, snap: Snapshot | None, user_id: str) -> bool:
        """Whether ``snap`` may answer for the user (in it, not changed since)."""
        return snap is not None and user_id in snap.user_pos and not self.changes.changed(user_id)

    async def submit(
        self, user_id: str, k: int, exclude_seen: bool, category: str | None
    ) -> Answer | None:
        """The snapshot's answer, or None when the graph must answer (no snapshot, user not
        in it or changed since, changes stream unreadable, category unknown or unreadable)."""
        if not self.holds(self.snapshot, user_id):
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer | None] = loop.create_future()
        self._queue.put(_Ask(user_id, k, exclude_seen, category, future, loop))
        return await future

    async def nearest(self, target: Cosine, vec: np.ndarray, k: int, exclude: int = -1) -> Nearest:
        """:func:`nearest` for one vector, ranked in the next batch."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Nearest] = loop.create_future()
        self._queue.put(_Near(target, vec, k, exclude, future, loop))
        return await future

    # ------------------------------------------------------------------ the scoring thread
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch: list[_Ask | _Near] = [first]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            metrics.SCORING_BATCH.observe(len(batch))
            asks = [a for a in batch if isinstance(a, _Ask)]
            nears = [a for a in batch if isinstance(a, _Near)]
            # One wake-up per event loop and batch (each call_soon_threadsafe writes to the
            # loop's self-pipe), not one per request.
            done: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
            if asks:
                _deliver(done, asks, _values(self.score, asks))
            if nears:
                _deliver(done, nears, _values(_rank_nears, nears))
            for loop, results in done.items():
                loop.call_soon_threadsafe(_resolve_all, results)

    def _want(self, snap: Snapshot, ask: _Ask) -> Want | None:
        if ask.category is None:
            return Want(ask.k, ask.exclude_seen)
        try:
            rows = self.category_rows(snap.items, ask.category)
        except Exception as e:  # Neo4j away on a cache miss: the graph path answers
            logger.warning("category rows unavailable: %s", type(e).__name__)
            return None
        return None if rows is None else Want(ask.k, ask.exclude_seen, rows)

    def score(self, batch: list[_Ask]) -> list[Answer | None]:
        snap = self.snapshot
        out: list[Answer | None] = [None] * len(batch)
        if snap is None:
            return out
        try:
            self.changes.sync()
        except Exception as e:
            logger.warning("changes stream unreadable (%s): graph path", type(e).__name__)
            return out
        todo: list[tuple[int, int, Want]] = []
        for n, a in enumerate(batch):
            if not self.holds(snap, a.user_id):
                continue
            want = self._want(snap, a)
            if want is not None:  # (unknown category: the graph path answers the 404)
                todo.append((n, snap.user_pos[a.user_id], want))
        if not todo:
            return out
        rows = np.fromiter((r for _, r, _ in todo), dtype=np.int64, count=len(todo))
        policy_version, adjuster = self.policy_for(snap.version)
        wants = [w for _, _, w in todo]
        ranked = rank(snap.items, snap.users[rows], wants, snap.seen_of(rows), adjuster)
        strategy = "policy" if adjuster is not None else "embedding"
        for (n, _, _), (top, scores) in zip(todo, ranked, strict=True):
            out[n] = Answer(
                strategy,
                policy_version,
                top,
                scores,
                snap.items,
                snap.version,
                snap,
            )
        return out


def _values(rank_part: Callable[[Any], Sequence[Any]], part: Any) -> Sequence[Any] | BaseException:
    try:
        return rank_part(part)
    except Exception as e:  # the requests fail with it; the thread goes on
        logger.exception("scoring batch failed")
        return e


def _deliver(
    done: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]],
    part: Sequence[_Ask | _Near],
    values: Sequence[Any] | BaseException,
) -> None:
    for n, ask in enumerate(part):
        value = values if isinstance(values, BaseException) else values[n]
        done.setdefault(ask.loop, []).append((ask.future, value))


def _rank_nears(nears: list[_Near]) -> list[Nearest]:
    """:func:`nearest` for a batch, one product per target."""
    groups: dict[int, list[int]] = {}
    for n, near in enumerate(nears):
        groups.setdefault(id(near.target), []).append(n)
    out: list[Nearest] = [(np.zeros(0, np.int64), np.zeros(0, np.float32))] * len(nears)
    for members in groups.values():
        ranked = nearest(
            nears[members[0]].target,
            np.stack([nears[n].vec for n in members]),
            [nears[n].k for n in members],
            [nears[n].exclude for n in members],
        )
        for n, found in zip(members, ranked, strict=True):
            out[n] = found
    return out


def _resolve_all(results: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, value in results:
        if future.done():  # the client went away
            continue
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)
