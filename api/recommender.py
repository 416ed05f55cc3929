"""Scoring against the active version's item embeddings, held in memory per version.

The item matrix of the active version is read from Neo4j once per version (100k × 64 floats
is 25 MB) and each request reads only the user's own row and history from Neo4j, so a
request costs one indexed Neo4j read plus one matrix–vector product.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
from neo4j import Driver

from graphstore import serving, writeback
from graphstore.writeback import ActiveModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemIndex:
    version: str
    ids: list[str]
    titles: list[str | None]
    matrix: np.ndarray  # [I, D]
    position: dict[str, int]


class Recommender:
    """Thread-safe cache of the active model and its item index."""

    def __init__(self, driver: Driver, database: str = "neo4j", refresh_s: float = 2.0) -> None:
        self.driver = driver
        self.database = database
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._active: ActiveModel | None = None
        self._checked = 0.0
        self._index: ItemIndex | None = None

    def active(self) -> ActiveModel | None:
        now = time.monotonic()
        if now - self._checked > self.refresh_s:
            self._active = writeback.get_active(self.driver, self.database)
            self._checked = now
        return self._active

    def index(self, active: ActiveModel) -> ItemIndex:
        current = self._index
        if current is not None and current.version == active.version:
            return current
        with self._lock:
            if self._index is None or self._index.version != active.version:
                ids, titles, matrix = serving.get_item_vectors(self.driver, active, self.database)
                self._index = ItemIndex(
                    active.version, ids, titles, matrix, {i: k for k, i in enumerate(ids)}
                )
                logger.info("loaded %d item vectors of version %s", len(ids), active.version)
            return self._index

    def top_k(
        self, user_vec: np.ndarray, index: ItemIndex, k: int, exclude: frozenset[str]
    ) -> list[tuple[str, str | None, float]]:
        scores = index.matrix @ user_vec
        for item in exclude:
            pos = index.position.get(item)
            if pos is not None:
                scores[pos] = -np.inf
        k = min(k, int(np.isfinite(scores).sum()))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(index.ids[j], index.titles[j], float(scores[j])) for j in top]
