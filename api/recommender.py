"""What serving holds per process: the active version, its policy, its items, the snapshot.

The item matrix of the active version is read from Neo4j once per version (100k × 64 floats
is 25 MB), and again when its Model node's ``refreshed_at`` changes (vectors written for items
created after activation). With the serving snapshot on (the default; :mod:`api.snapshot`),
every consenting user's vector, seen items, searches and segment are held in memory too, and a
request for such a user reads nothing from Neo4j; other requests (unknown users, cold start,
users changed since the snapshot was loaded) read the user's state from Neo4j (the "graph
path"). The active version, its newest DDPG policy and ``refreshed_at`` are re-read every
``refresh_s`` seconds (in a background thread when the snapshot is on), so a new version, a
new policy or new items are picked up without a restart, within ``refresh_s`` plus the time
to read the items (and, for a new version, the snapshot).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from neo4j import Driver

from api import metrics
from api.cache import Cached
from api.changes import Changes
from api.scoring import Scorer
from api.snapshot import (
    ItemIndex,
    QueryIndex,
    Snapshot,
    item_index,
    load_snapshot,
    read_queries,
    with_items,
)
from graphstore import policies, serving, writeback
from graphstore.serving import Scored
from graphstore.writeback import ActiveModel
from training.errors import ModelDirError
from training.inference import PolicyAdjuster, load_policy_adjuster_bytes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedPolicy:
    model_version: str
    version: int
    adjuster: PolicyAdjuster | None  # None: the stored policy is unusable or off (α = 0)


#: The cyclic garbage collector's thresholds while serving (``gc.set_threshold``). A young
#: collection examines every tracked object allocated since the last one that is still alive,
#: and with tens of requests in flight most are: at CPython's default of 700 a busy process
#: collects many times a second and promotes in-flight objects fast enough to start a full
#: collection every second or two (docs/benchmarks-api.md). Ten thousand allocations between
#: young collections cut their number, and the full ones', by an order of magnitude; a
#: request's objects are mostly freed by reference counting before any collection sees them.
GC_THRESHOLDS = (10_000, 10, 10)


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
        self._index_refreshed_at: int | None = None
        #: The query index read without a snapshot, by ``(version, refreshed_at)``.
        self._queries: tuple[tuple[str, int | None], QueryIndex] | None = None
        #: The active version's ``refreshed_at``, read with it.
        self._refreshed_at: int | None = None
        self._policy: LoadedPolicy | None = None
        self.popular: Cached[list[Scored]] = Cached("popular_items", popular_cache_s)
        self.popular_queries: Cached[list[tuple[str, str, float]]] = Cached(
            "popular_queries", popular_cache_s
        )
        self.categories: Cached[np.ndarray | None] = Cached("category_items", 60.0)
        self.segments: Cached[list[Scored]] = Cached("segment_items", popular_cache_s)
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
        self._follower: threading.Thread | None = None
        self._gc_thresholds: tuple[int, int, int] | None = None

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
                            self._refreshed_at = serving.get_model_refreshed_at(
                                self.driver, active.version, self.database
                            )
                        self._active = active
                        self._checked = time.monotonic()
                finally:
                    self._refresh_lock.release()
        return self._active

    def invalidate(self) -> None:
        """Re-read the active version on the next request (after an activation)."""
        self._checked = 0.0
        self._wake.set()

    def current_snapshot(self) -> Snapshot | None:
        """The snapshot when it is of the active version and was read after its
        ``refreshed_at``, as last read (no read here), else None."""
        snap, active = self.snapshot, self._active
        if snap is None or active is None or snap.version != active.version:
            return None
        return snap if snap.refreshed_at == self._refreshed_at else None

    def refreshed_since(self, version: str) -> bool:
        """Whether ``version``'s ``refreshed_at`` in the graph differs from the one last read
        (one read); then the active version is re-read with the next :meth:`active`."""
        moved = serving.get_model_refreshed_at(self.driver, version, self.database)
        if moved != self._refreshed_at:
            self.invalidate()
            return True
        return False

    # ---------------------------------------------------------------- serving snapshot
    def start(self) -> None:
        """Start the snapshot's scoring thread and the refresher that loads a snapshot of
        each version that becomes active, and set :data:`GC_THRESHOLDS` until :meth:`stop`
        (no-op without the snapshot)."""
        if self.scorer is None or self._refresher is not None:
            return
        self._gc_thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        self.changes.start()
        self.scorer.start()
        self._stop.clear()
        self._refresher = threading.Thread(
            target=self._refresh_loop, name="dpgcn-snapshot", daemon=True
        )
        self._refresher.start()
        self._follower = threading.Thread(
            target=self.changes.follow, args=(self._stop,), name="dpgcn-changes", daemon=True
        )
        self._follower.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._refresher is not None:
            self._refresher.join(30)
            self._refresher = None
        if self._follower is not None:
            self._follower.join(10)
            self._follower = None
        if self.scorer is not None:
            self.scorer.stop()
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
            self._gc_thresholds = None

    @property
    def snapshot(self) -> Snapshot | None:
        return None if self.scorer is None else self.scorer.snapshot

    def _refresh_loop(self) -> None:
        self._preload_popular()
        while not self._stop.is_set():
            try:
                self.refresh_snapshot()
            except Exception as e:  # Neo4j away: go on serving what is loaded
                logger.warning("snapshot refresh failed: %s", type(e).__name__)
            self._wake.wait(self.refresh_s)
            self._wake.clear()

    def _preload_popular(self) -> None:
        """Load the popular items (every unknown user's answer) before a request needs them."""
        try:
            self.popular_items(1, frozenset(), None)
        except Exception as e:  # Neo4j away: the first request that needs them loads them
            logger.warning("popular items not preloaded: %s", type(e).__name__)

    def refresh_snapshot(self) -> Snapshot | None:
        """Re-read the active version (when due) and load its snapshot if the served one is
        of another version; the old snapshot is served until the new one is complete. For
        the same version, a changed ``refreshed_at`` reloads the item index."""
        assert self.scorer is not None
        active = self.active()
        if active is None:
            self.scorer.snapshot = None
            return None
        current = self.scorer.snapshot
        if current is not None and current.version == active.version:
            return self._refresh_items(current, active)
        t0 = time.perf_counter()
        refreshed_at = self._refreshed_at
        snap = load_snapshot(
            self.driver,
            active,
            self.index(active),
            database=self.database,
            page=self.snapshot_page,
            refreshed_at=refreshed_at,
        )
        if self.active() != active:  # activated again meanwhile: load the newer one next
            logger.info("version changed while loading the snapshot of %s", active.version)
            self._wake.set()
        self._serve(snap)
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

    def _serve(self, snap: Snapshot) -> None:
        assert self.scorer is not None
        self.scorer.snapshot = snap
        self.changes.forget_before(snap.started)
        # The snapshot's dicts and lists (a million user ids at 1M users) live as long as the
        # version: keep them out of the collector's full passes, which would otherwise walk
        # them while requests wait (the old snapshot is still freed by reference counting).
        gc.collect()
        gc.freeze()

    def _refresh_items(self, current: Snapshot, active: ActiveModel) -> Snapshot:
        """``current``, or ``current`` over the version's items read again when its Model
        node's ``refreshed_at`` differs from the one ``current`` was read after."""
        refreshed_at = self._refreshed_at
        if refreshed_at == current.refreshed_at:
            return current
        items = self.index(active)
        queries = read_queries(self.driver, active, database=self.database, page=self.snapshot_page)
        snap = with_items(current, items, refreshed_at, queries)
        if snap is None:  # an item went away: read everything again
            snap = load_snapshot(
                self.driver,
                active,
                items,
                database=self.database,
                page=self.snapshot_page,
                refreshed_at=refreshed_at,
            )
        assert self.scorer is not None
        self.scorer.snapshot = snap
        self.categories.clear()
        logger.info(
            "items of %s refreshed (%s): %d items", active.version, refreshed_at, len(items.ids)
        )
        return snap

    def snapshot_vector(self, active: ActiveModel, user_id: str) -> np.ndarray | None:
        """The user's vector of ``active`` from the snapshot when it holds the user unchanged
        (a consenting user of that version; see :meth:`api.scoring.Scorer.holds`), else None
        (then the graph must be read)."""
        snap = self.snapshot
        if self.scorer is None or snap is None or snap.version != active.version:
            return None
        if not self.scorer.holds(snap, user_id):
            return None
        return snap.users[snap.user_pos[user_id]]

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
        if adjuster is not None and adjuster.alpha == 0.0:
            # validation switched the policy off: the scores are the embedding's, and the
            # answers say so (strategy "embedding", no policy version)
            logger.info("policy %d of %s is off (α = 0)", record.version, active.version)
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
        """The item index of ``active``: the snapshot's, else read once per version and again
        when the version's ``refreshed_at`` (read with it) changes."""
        refreshed_at = self._refreshed_at
        current = self._index
        if (
            current is not None
            and current.version == active.version
            and self._index_refreshed_at == refreshed_at
        ):
            metrics.cache_event("item_index", True)
            return current
        snap = self.snapshot
        same = snap is not None and snap.version == active.version
        if snap is not None and same and snap.refreshed_at == refreshed_at:
            self._index, self._index_refreshed_at = snap.items, snap.refreshed_at
            return snap.items
        with self._lock:
            current = self._index
            if (
                current is None
                or current.version != active.version
                or self._index_refreshed_at != refreshed_at
            ):
                metrics.cache_event("item_index", False)
                vectors = serving.get_item_vectors(self.driver, active, self.database)
                current = item_index(active.version, vectors)
                self._index, self._index_refreshed_at = current, refreshed_at
                logger.info("loaded %d item vectors of %s", len(vectors.ids), active.version)
            return current

    def queries(self, active: ActiveModel) -> QueryIndex:
        """The query index of ``active``: the snapshot's, else read (in pages) once per version
        and again when its ``refreshed_at`` changes."""
        refreshed_at = self._refreshed_at
        snap = self.snapshot
        if (
            snap is not None
            and snap.queries is not None
            and snap.version == active.version
            and snap.refreshed_at == refreshed_at
        ):
            return snap.queries
        key = (active.version, refreshed_at)
        with self._lock:
            if self._queries is None or self._queries[0] != key:
                found = read_queries(
                    self.driver, active, database=self.database, page=self.snapshot_page
                )
                self._queries = (key, found)
                logger.info("loaded %d query vectors of %s", len(found.ids), active.version)
            return self._queries[1]

    def category_rows(self, index: ItemIndex, category: str) -> np.ndarray | None:
        """Row numbers of the items in ``category`` (and its subcategories); None if unknown."""

        def load() -> np.ndarray | None:
            items = serving.get_category_items(self.driver, category, self.database)
            if items is None:
                return None
            rows = [index.position[i] for i in items if i in index.position]
            return np.asarray(sorted(rows), dtype=np.int64)

        return self.categories.get((index.version, category), load)

    # ---------------------------------------------------------------- non-personalized
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
