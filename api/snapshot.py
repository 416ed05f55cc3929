"""The in-memory serving snapshot of one model version and the micro-batching scorer.

A request for a known user would otherwise cost a Neo4j round trip (the user's vector and
history) plus one matrix–vector product over the whole catalogue (100k × 64 floats: 25 MB
read from memory per request). Instead, each API process holds a **snapshot** of the active
version: the item matrix, every consenting user's vector and seen items (read column-wise
from Neo4j in pages when the version becomes active, in a background thread; the previous
snapshot is served until the new one is complete, and an answer never mixes versions: user
vector, item matrix, policy and seen items all come from one snapshot).

**Changes after the load** (the live overlay): a user whose events, consent or erasure were
posted after the snapshot's load began is *changed*; requests for changed users take the
Neo4j path, which reads the graph as it is now. The process that takes the change marks the
user at once; it also appends the user id to the Redis stream ``dpgcn:serving:changes``,
which every API process reads (non-blocking ``XREAD``) once per scoring batch, i.e. after
the request arrived, so a change acknowledged by one process is honoured by every process's
next answer. If that read fails, the batch takes the Neo4j path (never a stale answer).

**Scoring** runs in one thread per process (see :class:`Scorer`), which takes every request
waiting (up to ``max_batch``): one policy-actor call and one matrix product ``U @ Mᵀ`` for the
batch (the item matrix is read once per batch instead of once per request), then an exact
top-k per row through block maxima (the top k items lie in the k blocks of 128 items with
the largest maxima; see :func:`top_k_batch`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pydantic_core

from api import metrics
from graphstore import serving
from graphstore.serving import Scored
from graphstore.writeback import ActiveModel
from training.inference import PolicyAdjuster

logger = logging.getLogger(__name__)

#: User ids whose serving state changed (events, consent, erasure), one entry per change.
CHANGES_STREAM = "dpgcn:serving:changes"
#: Approximate length the changes stream is trimmed to.
CHANGES_MAXLEN = 100_000
#: Seconds after a failed read of the changes stream before it is read again (meanwhile the
#: Neo4j path answers).
RETRY_S = 1.0
#: Items per block of the exact block-maximum top-k.
BLOCK = 128


@dataclass(frozen=True)
class ItemIndex:
    version: str
    ids: list[str]
    titles: list[str | None]
    matrix: np.ndarray  # [I, D]
    position: dict[str, int]


@dataclass(frozen=True)
class Snapshot:
    """Everything a personalized answer needs for the users of one model version."""

    version: str
    items: ItemIndex
    #: The item matrix transposed, ``[D, N']`` C-contiguous, with ``N'`` the item count
    #: rounded up to a multiple of :data:`BLOCK` (zero columns): see :func:`item_columns`.
    columns: np.ndarray
    user_pos: dict[str, int]
    users: np.ndarray  # [U, D] float32
    #: Seen item rows of user ``u``: ``seen_rows[seen_ptr[u]:seen_ptr[u + 1]]``, newest first.
    seen_ptr: np.ndarray
    seen_rows: np.ndarray
    #: ``time.monotonic()`` when the load began: changes learnt before it are in the snapshot.
    started: float

    @cached_property
    def item_json(self) -> list[bytes]:
        """Per item, the start of its JSON object in an answer, up to its score:
        ``b'{"item_id":"i1","title":"T","score":'`` (built once, by :func:`load_snapshot`)."""
        return [
            pydantic_core.to_json({"item_id": i, "title": t})[:-1] + b',"score":'
            for i, t in zip(self.items.ids, self.items.titles, strict=True)
        ]

    def seen(self, row: int) -> np.ndarray:
        return self.seen_rows[self.seen_ptr[row] : self.seen_ptr[row + 1]]

    def seen_of(self, rows: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, ...]:
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


def item_columns(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` ``[N, D]`` as the scoring product wants it: transposed and contiguous
    (``U @ columns`` measured 10–18 % faster than ``U @ matrix.T`` with one BLAS thread for
    batches of 4–32), padded with zero columns to a multiple of :data:`BLOCK` for
    :func:`top_k_batch`."""
    n, dim = matrix.shape
    columns = np.zeros((dim, -(-n // BLOCK) * BLOCK), np.float32)
    columns[:, :n] = matrix.T
    return columns


def item_index(version: str, ids: list[str], titles: list[str | None], matrix: Any) -> ItemIndex:
    return ItemIndex(version, ids, titles, matrix, {i: k for k, i in enumerate(ids)})


def load_snapshot(
    driver: Any,
    active: ActiveModel,
    items: ItemIndex,
    *,
    database: str = "neo4j",
    page: int = 20_000,
) -> Snapshot:
    """Read the users of ``active`` (see :func:`graphstore.serving.iter_user_snapshot`) into a
    snapshot over ``items`` (which must be the same version)."""
    if items.version != active.version:
        raise ValueError(f"item index of {items.version}, snapshot of {active.version}")
    started = time.monotonic()
    ids: list[str] = []
    chunks: list[np.ndarray] = []
    ptr = array("q", [0])
    rows = array("i")
    pos = items.position
    dim = items.matrix.shape[1]
    for p in serving.iter_user_snapshot(driver, active, page=page, database=database):
        if p.vectors.shape[1] != dim:  # a vector of another shape: not servable from here
            continue
        ids += p.ids
        chunks.append(p.vectors)
        for seen in p.seen:
            rows.extend([pos[i] for i in seen if i in pos])
            ptr.append(len(rows))
    users = np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)
    snap = Snapshot(
        version=active.version,
        items=items,
        columns=item_columns(items.matrix),
        user_pos={u: k for k, u in enumerate(ids)},
        users=np.ascontiguousarray(users, dtype=np.float32),
        seen_ptr=np.frombuffer(ptr, dtype=np.int64),
        seen_rows=np.frombuffer(rows, dtype=np.int32),
        started=started,
    )
    _ = snap.item_json  # encoded here, in the loading thread, not by the first answer
    return snap


def top_k_batch(scores: np.ndarray, ks: Sequence[int]) -> list[np.ndarray]:
    """Per row of ``scores`` ``[B, N]``, the columns of its ``k`` largest finite scores, best
    first (fewer when fewer are finite). Exact: with ``N`` a multiple of :data:`BLOCK`, the k
    best items of a row lie in the k blocks with the largest maxima (a block holding one of
    them has a maximum at least the k-th best score, and at most k blocks can)."""
    b, n = scores.shape
    out: list[np.ndarray] = []
    if n == 0:
        return [np.zeros(0, np.int64) for _ in ks]
    blocks = n // BLOCK if n % BLOCK == 0 else 0
    maxima = scores.reshape(b, blocks, BLOCK).max(axis=2) if blocks else None
    offsets = np.arange(BLOCK)
    ks = list(ks)
    if maxima is not None and b > 1 and len(set(ks)) == 1 and ks[0] < blocks // 4:
        k = ks[0]  # the usual case, one k for the whole batch: no loop over the rows
        best = np.argpartition(-maxima, k - 1, axis=1)[:, :k]
        cols = (best[:, :, None] * BLOCK + offsets).reshape(b, -1)
        sub = np.take_along_axis(scores, cols, axis=1)
        top = np.argpartition(-sub, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(sub, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        chosen = np.take_along_axis(cols, np.take_along_axis(top, order, axis=1), axis=1)
        finite = np.isfinite(np.take_along_axis(top_scores, order, axis=1))
        return [chosen[r][finite[r]] for r in range(b)]
    for r, k in enumerate(ks):
        row = scores[r]
        if maxima is not None and k < blocks // 4:
            best = np.argpartition(-maxima[r], k - 1)[:k]
            candidates = (best[:, None] * BLOCK + offsets).ravel()
        else:
            candidates = np.arange(n)
        part = row[candidates]
        kk = min(k, len(candidates))
        pick = np.argpartition(-part, kk - 1)[:kk]
        pick = pick[np.argsort(-part[pick], kind="stable")]
        out.append(candidates[pick[np.isfinite(part[pick])]])
    return out


@dataclass(frozen=True)
class Answer:
    """A personalized answer from one snapshot: item rows of ``snapshot``, best first."""

    strategy: str  # "policy" | "embedding"
    policy_version: int | None
    rows: list[int]
    scores: list[float]
    snapshot: Snapshot

    @property
    def version(self) -> str:
        return self.snapshot.version

    @property
    def items(self) -> list[Scored]:
        ids, titles = self.snapshot.items.ids, self.snapshot.items.titles
        return [(ids[c], titles[c], s) for c, s in zip(self.rows, self.scores, strict=True)]

    def items_json(self) -> bytes:
        """The answer's ``items`` as JSON (the response model's fields; no explanations),
        from the snapshot's encoded items: the bytes ``pydantic_core.to_json`` gives the
        ``ScoredItem`` dicts, without building them."""
        if not self.rows:
            return b"[]"
        heads = self.snapshot.item_json
        scores = pydantic_core.to_json(self.scores)[1:-1].split(b",")
        return (
            b"["
            + b",".join(
                [
                    heads[c] + s + b',"explanation":null}'
                    for c, s in zip(self.rows, scores, strict=True)
                ]
            )
            + b"]"
        )


@dataclass
class _Ask:
    user_id: str
    k: int
    exclude_seen: bool
    category: str | None
    future: asyncio.Future[Answer | None]
    loop: asyncio.AbstractEventLoop


@dataclass
class Changes:
    """Users changed since a snapshot's load began (this process's and, through Redis, every
    other API process's), by the monotonic time this process learnt of the change."""

    redis: Any = None
    _users: dict[str, float] = field(default_factory=dict)
    _last_id: str | None = None
    _retry_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, user_id: str) -> None:
        with self._lock:
            self._users[user_id] = time.monotonic()

    def changed(self, user_id: str) -> bool:
        return user_id in self._users

    def publish(self, user_ids: Iterable[str], pipe: Any = None) -> None:
        """Mark ``user_ids`` here and queue them for the other processes (on ``pipe``, a Redis
        pipeline the caller executes, or at once); raises the Redis error."""
        ids = list(dict.fromkeys(user_ids))
        for u in ids:
            self.mark(u)
        if self.redis is None or not ids:
            return
        target = pipe if pipe is not None else self.redis.pipeline(transaction=False)
        for u in ids:
            target.xadd(CHANGES_STREAM, {"user_id": u}, maxlen=CHANGES_MAXLEN, approximate=True)
        if pipe is None:
            target.execute()

    def start(self) -> None:
        """Remember where the changes stream ends now (changes before this are in any
        snapshot loaded later). Without Redis, only this process's changes are seen."""
        if self.redis is None:
            return
        try:
            last = self.redis.xrevrange(CHANGES_STREAM, count=1)
            self._last_id = last[0][0].decode() if last else "0-0"
        except Exception as e:  # read it all later: whatever it holds counts as changed
            logger.warning("changes stream unreadable at start: %s", type(e).__name__)
            self._last_id = "0-0"

    def sync(self) -> None:
        """Read what other processes published since the last read; raises when Redis does
        not answer (the caller must then not trust the snapshot). After a failed read, the
        next :data:`RETRY_S` seconds raise at once without trying (a Redis outage must not
        cost every batch a connect timeout)."""
        if self.redis is None:
            return
        if time.monotonic() < self._retry_at:
            raise ConnectionError("changes stream unreadable a moment ago")
        try:
            self._read()
        except Exception:
            self._retry_at = time.monotonic() + RETRY_S
            raise

    def _read(self) -> None:
        if self._last_id is None:
            self._last_id = "0-0"
        while True:
            reply = self.redis.xread({CHANGES_STREAM: self._last_id}, count=10_000)
            now = time.monotonic()
            got = 0
            for _, entries in reply or []:
                got += len(entries)
                with self._lock:
                    for entry_id, fields in entries:
                        user = fields.get(b"user_id")
                        if user is not None:
                            self._users[user.decode()] = now
                        self._last_id = entry_id.decode()
            if got < 10_000:
                return

    def forget_before(self, started: float) -> None:
        """Drop the changes a snapshot whose load began at ``started`` already holds."""
        with self._lock:
            self._users = {u: t for u, t in self._users.items() if t >= started}


class Scorer:
    """Scores the waiting requests of this process in batches.

    One scoring thread fed by a queue takes every request waiting when it is free, so while
    one batch is scored the next accumulates (mean batch 16–20 under the benchmark's load),
    and the matrix product (BLAS, GIL released) overlaps the event loop. (Scoring on the event
    loop's own thread, one batch per loop iteration, was measured too: over HTTP its batches
    stayed small and it served less; docs/benchmarks-api.md.)
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
        self._queue: queue.SimpleQueue[_Ask | None] = queue.SimpleQueue()
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

    async def submit(
        self, user_id: str, k: int, exclude_seen: bool, category: str | None
    ) -> Answer | None:
        """The snapshot's answer, or None when the Neo4j path must answer (no snapshot,
        user not in it or changed since, changes stream unreadable)."""
        snap = self.snapshot
        if snap is None or user_id not in snap.user_pos or self.changes.changed(user_id):
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer | None] = loop.create_future()
        self._queue.put(_Ask(user_id, k, exclude_seen, category, future, loop))
        return await future

    # ------------------------------------------------------------------ the scoring thread
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            try:
                answers: list[Answer | None] | BaseException = self.score(batch)
            except Exception as e:  # the requests fail with it; the thread goes on
                logger.exception("scoring batch failed")
                answers = e
            # One wake-up per event loop and batch (each call_soon_threadsafe writes to the
            # loop's self-pipe), not one per request.
            done: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
            for n, ask in enumerate(batch):
                value = answers if isinstance(answers, BaseException) else answers[n]
                done.setdefault(ask.loop, []).append((ask.future, value))
            for loop, results in done.items():
                loop.call_soon_threadsafe(_resolve_all, results)

    def score(self, batch: list[_Ask]) -> list[Answer | None]:
        metrics.SCORING_BATCH.observe(len(batch))
        snap = self.snapshot
        out: list[Answer | None] = [None] * len(batch)
        if snap is None:
            return out
        try:
            self.changes.sync()
        except Exception as e:
            logger.warning("changes stream unreadable (%s): Neo4j path", type(e).__name__)
            return out
        todo = [
            (n, snap.user_pos[a.user_id])
            for n, a in enumerate(batch)
            if a.user_id in snap.user_pos and not self.changes.changed(a.user_id)
        ]
        if not todo:
            return out
        rows = np.fromiter((r for _, r in todo), dtype=np.int64, count=len(todo))
        vecs = snap.users[rows]
        policy_version, adjuster = self.policy_for(snap.version)
        strategy = "policy" if adjuster is not None else "embedding"
        if adjuster is not None:
            # each user's n_hist newest items, oldest first, right-aligned (-1 = none)
            n_hist = adjuster.state_history
            hist = np.full((len(todo), n_hist), -1, np.int64)
            owner, position, item = snap.seen_of(rows, n_hist)
            hist[owner, n_hist - 1 - position] = item
            vecs = adjuster.adjust(vecs, snap.items.matrix, hist)
        n_items = len(snap.items.ids)
        plain = [j for j, (n, _) in enumerate(todo) if batch[n].category is None]
        results: dict[int, np.ndarray] = {}
        scores_of: dict[int, np.ndarray] = {}
        if plain:
            scores = vecs[plain] @ snap.columns
            scores[:, n_items:] = -np.inf
            excluding = [i for i, j in enumerate(plain) if batch[todo[j][0]].exclude_seen]
            if excluding:
                owner, _, item = snap.seen_of(rows[plain][excluding])
                scores[np.asarray(excluding)[owner], item] = -np.inf
            tops = top_k_batch(scores, [batch[todo[j][0]].k for j in plain])
            for i, j in enumerate(plain):
                results[j] = tops[i]
                scores_of[j] = scores[i, tops[i]]
        for j, (n, r) in enumerate(todo):
            ask = batch[n]
            if ask.category is None:
                continue
            try:
                cand = self.category_rows(snap.items, ask.category)
            except Exception as e:  # Neo4j away on a cache miss: the Neo4j path answers
                logger.warning("category rows unavailable: %s", type(e).__name__)
                continue
            if cand is None:  # unknown category: the Neo4j path answers the 404
                continue
            s = snap.items.matrix[cand] @ vecs[j]
            if ask.exclude_seen:
                s[np.isin(cand, snap.seen(r))] = -np.inf
            top = top_k_batch(s[None], [ask.k])[0]
            results[j] = cand[top]
            scores_of[j] = s[top]
        for j, (n, _) in enumerate(todo):
            if j in results:
                out[n] = Answer(
                    strategy,
                    policy_version,
                    results[j].tolist(),
                    scores_of[j].tolist(),
                    snap,
                )
        return out


def _resolve_all(results: list[tuple[asyncio.Future[Answer | None], Any]]) -> None:
    for future, value in results:
        if future.done():  # the client went away
            continue
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)
