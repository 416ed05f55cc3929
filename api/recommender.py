"""Scoring against the active version's item embeddings, held in memory per version.

The item matrix of the active version is read from Neo4j once per version (100k × 64 floats
is 25 MB). With the serving snapshot on (the default; :mod:`api.snapshot`), every consenting
user's vector and seen items are held in memory too and a request for such a user reads
nothing from Neo4j; other requests (unknown users, cold start, users changed since the
snapshot was loaded) read the user's row and history from Neo4j (the "Neo4j path"). The
active version and its newest DDPG policy are re-read every ``refresh_s`` seconds (in a
background thread when the snapshot is on), so a new version or a new policy is picked up
without a restart.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from neo4j import Driver

from api import metrics
from api.snapshot import Changes, ItemIndex, Scorer, Snapshot, item_index, load_snapshot
from graphstore import policies, serving, writeback
from graphstore.serving import Scored
from graphstore.writeback import ActiveModel
from training.errors import ModelDirError
from training.inference import PolicyAdjuster, load_policy_adjuster_bytes

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class LoadedPolicy:
    model_version: str
    version: int
    adjuster: PolicyAdjuster | None  # None: the stored policy is unusable for this model


class TtlCache(Generic[T]):
    """A small thread-safe LRU cache whose entries expire after ``ttl_s``."""

    def __init__(self, name: str, ttl_s: float, size: int = 256) -> None:
        self.name, self.ttl_s, self.size = name, ttl_s, size
        self._data: OrderedDict[object, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: object, load: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and hit[0] > now:
                self._data.move_to_end(key)
                metrics.cache_event(self.name, True)
                return hit[1]
        metrics.cache_event(self.name, False)
        value = load()
        with self._lock:
            self._data[key] = (now + self.ttl_s, value)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class Recommender:
    """Thread-safe cache of the active model, its newest policy and its item index."""

    def __init__(
        self,
        driver: Driver,
        database: str = "neo4j",
        refresh_s: float = 2.0,
        popular_cache_s: float = 60.0,
        *,
        snapshot: bool = False,
        redis: Any = None,
        max_batch: int = 64,
        snapshot_page: int = 20_000,
    ) -> None:
        self.driver = driver
        self.database = database
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._active: ActiveModel | None = None
        self._checked = 0.0
        self._index: ItemIndex | None = None
        self._policy: LoadedPolicy | None = None
        self.popular: TtlCache[list[Scored]] = TtlCache("popular_items", popular_cache_s)
        self.popular_queries: TtlCache[list[tuple[str, str, float]]] = TtlCache(
            "popular_queries", popular_cache_s
        )
        self.categories: TtlCache[np.ndarray | None] = TtlCache("category_items", 60.0)
        self.segments: TtlCache[list[Scored]] = TtlCache("segment_items", popular_cache_s)
        #: The newest policy of each model version served (the active one and, while a new
        #: snapshot loads, the snapshot's).
        self._policies: dict[str, LoadedPolicy] = {}
        self.changes = Changes(redis)
        self.snapshot_page = snapshot_page
        self.scorer: Scorer | None = (
            Scorer(self.changes, self.snapshot_policy, self.category_rows, max_batch)
            if snapshot
            else None
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    # ---------------------------------------------------------------- active model + policy
    def active(self) -> ActiveModel | None:
        """The active version (re-read at most every ``refresh_s``; one thread re-reads while
        the others go on with the current one)."""
        if time.monotonic() - self._checked > self.refresh_s:
            first = self._checked == 0.0
            if self._refresh_lock.acquire(blocking=first):
                try:
                    if time.monotonic() - self._checked > self.refresh_s:
                        active = writeback.get_active(self.driver, self.database)
                        if active is not None:
                            self._refresh_policy(active)
                        self._active = active
                        self._checked = time.monotonic()
                finally:
                    self._refresh_lock.release()
        return self._active

    def invalidate(self) -> None:
        """Re-read the active version on the next request (after an activation)."""
        self._checked = 0.0
        self._wake.set()

    # ---------------------------------------------------------------- serving snapshot
    def start(self) -> None:
        """Start the snapshot's scoring thread and the refresher that loads a snapshot of
        each version that becomes active (no-op without the snapshot)."""
        if self.scorer is None or self._refresher is not None:
            return
        self.changes.start()
        self.scorer.start()
        self._stop.clear()
        self._refresher = threading.Thread(
            target=self._refresh_loop, name="dpgcn-snapshot", daemon=True
        )
        self._refresher.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._refresher is not None:
            self._refresher.join(30)
            self._refresher = None
        if self.scorer is not None:
            self.scorer.stop()

    @property
    def snapshot(self) -> Snapshot | None:
        return None if self.scorer is None else self.scorer.snapshot

    def _refresh_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh_snapshot()
            except Exception as e:  # Neo4j away: go on serving what is loaded
                logger.warning("snapshot refresh failed: %s", type(e).__name__)
            self._wake.wait(self.refresh_s)
            self._wake.clear()

    def refresh_snapshot(self) -> Snapshot | None:
        """Re-read the active version (when due) and load its snapshot if the served one is
        of another version; the old snapshot is served until the new one is complete."""
        assert self.scorer is not None
        active = self.active()
        if active is None:
            self.scorer.snapshot = None
            return None
        current = self.scorer.snapshot
        if current is not None and current.version == active.version:
            return current
        t0 = time.perf_counter()
        snap = load_snapshot(
            self.driver,
            active,
            self.index(active),
            database=self.database,
            page=self.snapshot_page,
        )
        if self.active() != active:  # activated again meanwhile: load the newer one next
            logger.info("version changed while loading the snapshot of %s", active.version)
            self._wake.set()
        self.scorer.snapshot = snap
        self.changes.forget_before(snap.started)
        # The snapshot's dicts and lists (a million user ids at 1M users) live as long as the
        # version: keep them out of the collector's full passes, which would otherwise walk
        # them while requests wait (the old snapshot is still freed by reference counting).
        gc.collect()
        gc.freeze()
        self._policies = {
            v: p for v, p in self._policies.items() if v in (snap.version, active.version)
        }
        logger.info(
            "serving snapshot of %s: %d users, %d items, %d seen items (%.1f s)",
            snap.version,
            len(snap.user_pos),
            len(snap.items.ids),
            len(snap.seen_rows),
            time.perf_counter() - t0,
        )
        return snap

    def snapshot_policy(self, version: str) -> tuple[int | None, PolicyAdjuster | None]:
        """``(policy version, adjuster)`` of ``version``'s newest usable policy (None, None)."""
        current = self._policies.get(version)
        if current is None or current.adjuster is None:
            return None, None
        return current.version, current.adjuster

    def _refresh_policy(self, active: ActiveModel) -> None:
        latest = serving.get_policy_version(self.driver, active.version, self.database)
        current = self._policy
        if latest is None:
            self._policy = None
            self._policies.pop(active.version, None)
            return
        if current and current.model_version == active.version and current.version == latest:
            return
        record = policies.get_latest_policy(self.driver, active.version, self.database)
        if record is None:
            self._policy = None
            self._policies.pop(active.version, None)
            return
        adjuster: PolicyAdjuster | None
        try:
            adjuster = load_policy_adjuster_bytes(record.actor, with_history=False)
            in_dim = adjuster.actor.layers[0][0].shape[1]
            if in_dim != 2 * active.dim:
                raise ModelDirError(f"actor takes {in_dim} inputs, model dim is {active.dim}")
        except ModelDirError as e:
            logger.warning("policy %d of %s unusable: %s", record.version, active.version, e)
            adjuster = None
        self._policy = LoadedPolicy(active.version, record.version, adjuster)
        self._policies[active.version] = self._policy
        logger.info("serving policy version %d of model %s", record.version, active.version)

    def policy(self, active: ActiveModel) -> LoadedPolicy | None:
        current = self._policy
        if current is None or current.model_version != active.version:
            return None
        return current

    # ---------------------------------------------------------------- item index
    def index(self, active: ActiveModel) -> ItemIndex:
        current = self._index
        if current is not None and current.version == active.version:
            metrics.cache_event("item_index", True)
            return current
        snap = self.snapshot
        if snap is not None and snap.version == active.version:
            self._index = snap.items
            return snap.items
        with self._lock:
            if self._index is None or self._index.version != active.version:
                metrics.cache_event("item_index", False)
                ids, titles, matrix = serving.get_item_vectors(self.driver, active, self.database)
                self._index = item_index(active.version, ids, titles, matrix)
                logger.info("loaded %d item vectors of version %s", len(ids), active.version)
            return self._index

    def category_rows(self, index: ItemIndex, category: str) -> np.ndarray | None:
        """Row numbers of the items in ``category`` (and its subcategories); None if unknown."""

        def load() -> np.ndarray | None:
            items = serving.get_category_items(self.driver, category, self.database)
            if items is None:
                return None
            rows = [index.position[i] for i in items if i in index.position]
            return np.asarray(sorted(rows), dtype=np.int64)

        return self.categories.get((index.version, category), load)

    # ---------------------------------------------------------------- scoring
    def adjust(
        self, user_vec: np.ndarray, index: ItemIndex, policy: LoadedPolicy, recent: Sequence[str]
    ) -> np.ndarray:
        """The DDPG adjustment ``u + α·scale·μ([u ‖ mean recent item vectors])``; ``recent``
        is newest first."""
        assert policy.adjuster is not None
        n = policy.adjuster.state_history
        rows = [index.position[i] for i in recent if i in index.position][:n][::-1]
        hist = np.full((1, n), -1, np.int64)
        if rows:
            hist[0, n - len(rows) :] = rows
        return policy.adjuster.adjust(user_vec[None].astype(np.float32), index.matrix, hist)[0]

    def top_k(
        self,
        user_vec: np.ndarray,
        index: ItemIndex,
        k: int,
        exclude: frozenset[str],
        rows: np.ndarray | None = None,
    ) -> list[Scored]:
        """Top ``k`` items by dot product, best first; ``rows`` restricts the candidates."""
        if rows is None:
            scores = index.matrix @ user_vec
            candidates = None
        else:
            scores = index.matrix[rows] @ user_vec
            candidates = rows
        if exclude:
            if candidates is None:
                ex = [p for p in (index.position.get(i) for i in exclude) if p is not None]
                scores[ex] = -np.inf
            else:
                mask = np.array([index.ids[r] in exclude for r in candidates], dtype=bool)
                scores[mask] = -np.inf
        k = min(k, int(np.isfinite(scores).sum()))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        out = []
        for j in top:
            row = int(j if candidates is None else candidates[j])
            out.append((index.ids[row], index.titles[row], float(scores[j])))
        return out

    def popular_items(
        self, k: int, exclude: frozenset[str], category: str | None, depth: int = 1000
    ) -> list[Scored]:
        """The most popular items (cached ``depth`` deep), leaving out ``exclude``."""
        ranked = self.popular.get(
            category,
            lambda: serving.get_popular_items(self.driver, depth, self.database, category),
        )
        return [r for r in ranked if r[0] not in exclude][:k]

    def segment_items(
        self, segment: str, k: int, exclude: frozenset[str], depth: int = 1000
    ) -> list[Scored]:
        """The items most popular in ``segment`` (cached), leaving out ``exclude``."""
        ranked = self.segments.get(
            segment,
            lambda: serving.get_segment_popular_items(self.driver, segment, depth, self.database),
        )
        return [r for r in ranked if r[0] not in exclude][:k]
