"""Write embeddings back as node properties under a model version, and activate versions.

Versions are double-buffered: each embedded label has two slot properties, ``embedding_a``
and ``embedding_b`` (each with its own vector index and an ``embedding_<slot>_version`` tag).
A new version is written into the slot the active version does not use, marked complete, and
then activated by flipping ``(:Model).active`` in one transaction. Readers take the active
version's slot and only use vectors whose tag equals that version, so a reader sees the old
or the new version, never a mix — even while another version is being written.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from neo4j import Driver

from graphstore import model
from graphstore.driver import execute
from graphstore.errors import GraphStoreError, VersionError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveModel:
    version: str
    slot: str
    dim: int
    model_name: str
    metrics: dict[str, Any]
    run_id: str | None = None

    @property
    def property(self) -> str:
        return model.embedding_property(self.slot)


def get_active(driver: Driver, database: str = "neo4j") -> ActiveModel | None:
    records = execute(driver, "models/get_active_model", database=database, read=True)
    if not records:
        return None
    r = records[0]
    return ActiveModel(
        version=r["version"],
        slot=r["slot"],
        dim=int(r["dim"]),
        model_name=r["model_name"] or "",
        metrics=json.loads(r["metrics"] or "{}"),
        run_id=r["run_id"],
    )


def get_model(driver: Driver, version: str, database: str = "neo4j") -> dict[str, Any] | None:
    records = execute(
        driver, "models/get_model", {"version": version}, database=database, read=True
    )
    return dict(records[0]["model"]) if records else None


def list_models(driver: Driver, database: str = "neo4j") -> list[dict[str, Any]]:
    return [
        dict(r["model"])
        for r in execute(driver, "models/list_models", database=database, read=True)
    ]


@dataclass(frozen=True)
class IndexOptions:
    """HNSW options of the slot vector indexes (``vector.hnsw.m``,
    ``vector.hnsw.ef_construction``, ``vector.quantization.enabled`` in Neo4j 5.26).

    The defaults trade build speed against recall@10: see docs/benchmarks.md, write-back."""

    #: Neighbours per node in the HNSW graph (Neo4j: 1–512, its default 16).
    m: int = 16
    #: Candidates kept while inserting a vector (Neo4j: 1–3200, its default 100).
    ef_construction: int = 100
    #: Int8-quantized vectors in the index (Neo4j's default: on).
    quantization: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.m <= 512:
            raise GraphStoreError(f"vector index m must be in 1..512, not {self.m}")
        if not 1 <= self.ef_construction <= 3200:
            raise GraphStoreError(
                f"vector index ef_construction must be in 1..3200, not {self.ef_construction}"
            )

    def params(self) -> dict[str, Any]:
        return {
            "m": self.m,
            "ef_construction": self.ef_construction,
            "quantization": self.quantization,
        }


#: The options ``write_embeddings`` gives a slot index unless told otherwise.
DEFAULT_INDEX_OPTIONS = IndexOptions()


def get_vector_index(driver: Driver, name: str, database: str = "neo4j") -> dict[str, Any] | None:
    """An existing vector index's ``dim``, ``m``, ``ef_construction``, ``quantization`` and
    ``state``; None when there is no index of that name."""
    records = execute(
        driver, "writeback/get_vector_index", {"name": name}, database=database, read=True
    )
    return dict(records[0]) if records else None


def ensure_vector_index(
    driver: Driver,
    label: str,
    slot: str,
    dim: int,
    database: str = "neo4j",
    options: IndexOptions | None = None,
) -> str:
    """Create the (label, slot) vector index for ``dim`` with ``options``; recreate it if its
    dimension or HNSW options differ."""
    options = options or DEFAULT_INDEX_OPTIONS
    name = model.vector_index_name(label, slot)
    prop = model.embedding_property(slot)
    existing = get_vector_index(driver, name, database)
    if existing is not None and (
        int(existing["dim"]) != dim
        or existing["m"] != options.m
        or existing["ef_construction"] != options.ef_construction
        or bool(existing["quantization"]) != options.quantization
    ):
        execute(driver, "writeback/drop_vector_index", {"name": name}, database=database)
    execute(
        driver,
        "writeback/create_vector_index",
        {"name": name, "dim": dim, **options.params()},
        database=database,
        label=label,
        property=prop,
    )
    return name


def begin_version(
    driver: Driver,
    version: str,
    dim: int,
    model_name: str,
    run_id: str | None = None,
    database: str = "neo4j",
) -> str:
    """Register ``version`` as being written; returns the slot it is written to.

    Re-beginning a version that is already complete is refused (versions are immutable)."""
    existing = get_model(driver, version, database)
    if existing and existing.get("status") == "complete":
        raise VersionError(f"model version {version!r} is already complete")
    active = get_active(driver, database)
    if existing and existing.get("slot") and (active is None or active.slot != existing["slot"]):
        slot = str(existing["slot"])  # resume into the same slot
    else:
        slot = "b" if active is not None and active.slot == "a" else "a"
    execute(driver, "models/supersede_slot", {"slot": slot, "version": version}, database=database)
    execute(
        driver,
        "models/create_model",
        {
            "version": version,
            "slot": slot,
            "dim": dim,
            "model_name": model_name,
            "created_at": time.time(),
            "run_id": run_id,
        },
        database=database,
    )
    return slot


#: How long ``write_embeddings`` waits for a rebuilt index to come ONLINE.
INDEX_WAIT_S = 1800


def _checked_vectors(
    label: str, ids: np.ndarray | list[str], vectors: np.ndarray, dim: int, batch_size: int
) -> np.ndarray:
    """``vectors`` as an array, or a VersionError saying what is wrong with them."""
    if label not in model.EMBEDDED_LABELS:
        raise VersionError(f"{label!r} does not take embeddings")
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(ids) or vectors.shape[1] != dim:
        raise VersionError(
            f"embeddings for {label} have shape {vectors.shape}, expected ({len(ids)}, {dim})"
        )
    if not np.issubdtype(vectors.dtype, np.number) or not np.isfinite(vectors).all():
        raise VersionError(f"embeddings for {label} are not all finite numbers")
    if batch_size < 1:
        raise VersionError(f"batch_size must be >= 1, not {batch_size}")
    return vectors


def write_embeddings(
    driver: Driver,
    version: str,
    label: str,
    ids: np.ndarray | list[str],
    vectors: np.ndarray,
    *,
    batch_size: int = 2000,
    database: str = "neo4j",
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    rebuild_index: bool = False,
    index_options: IndexOptions | None = None,
) -> int:
    """Write ``vectors[k]`` to the node ``(label {id: ids[k]})`` in the version's slot.

    Batches (disjoint nodes) run on ``workers`` threads. The slot's vector index, with
    ``index_options`` (default :data:`DEFAULT_INDEX_OPTIONS`), is ONLINE when this returns.
    With ``rebuild_index`` the index is dropped before the write and created and populated
    after it: nobody queries it meanwhile, since a version is only written into the slot that
    is not active, and the version is marked complete (then activated) only after this
    returns. Off by default (docs/benchmarks.md, write-back, compares the two)."""
    record = get_model(driver, version, database)
    if record is None or record.get("status") != "writing":
        raise VersionError(f"model version {version!r} is not being written")
    slot = str(record["slot"])
    vectors = _checked_vectors(label, ids, vectors, int(record["dim"]), batch_size)
    dim = int(record["dim"])
    keys = [str(i) for i in ids]
    name = model.vector_index_name(label, slot)
    if rebuild_index:
        active = get_active(driver, database)
        # never drop an index that readers use (only if a rollback raced begin_version)
        rebuild_index = active is None or active.slot != slot
    if rebuild_index:
        execute(driver, "writeback/drop_vector_index", {"name": name}, database=database)
    else:
        ensure_vector_index(driver, label, slot, dim, database, index_options)
    prop = model.embedding_property(slot)

    def write(start: int) -> int:
        # The vectors go as one float64 ndarray per batch, which the driver packs as a list
        # of lists (its rust extension). Not as Python lists: the driver builds repr() of
        # every RUN's parameters for a debug line even when debug logging is off, and numpy's
        # repr of a large array is a short summary (per-row costs: docs/benchmarks.md,
        # write-back).
        batch = np.ascontiguousarray(vectors[start : start + batch_size], dtype=np.float64)
        records = execute(
            driver,
            "writeback/set_embeddings",
            {"ids": keys[start : start + batch_size], "vectors": batch, "version": version},
            database=database,
            label=label,
            property=prop,
        )
        return int(records[0]["written"]) if records else 0

    starts = range(0, len(keys), batch_size)
    written = 0
    with ThreadPoolExecutor(max(1, min(workers, len(starts)))) as pool:
        for start, n in zip(starts, pool.map(write, starts), strict=True):
            written += n
            if progress:
                progress(min(batch_size, len(keys) - start))
    ensure_vector_index(driver, label, slot, dim, database, index_options)
    execute(
        driver,
        "writeback/await_vector_index",
        {"name": name, "seconds": INDEX_WAIT_S},
        database=database,
    )
    return written


def complete_version(
    driver: Driver,
    version: str,
    counts: dict[str, int],
    metrics: dict[str, Any],
    database: str = "neo4j",
) -> None:
    execute(
        driver,
        "models/complete_model",
        {
            "version": version,
            "counts": counts,
            "metrics": json.dumps(metrics),
            "completed_at": time.time(),
        },
        database=database,
    )


def activate_version(driver: Driver, version: str, database: str = "neo4j") -> ActiveModel:
    """Make a complete version active (atomic). Activating the active version is a no-op."""
    records = execute(
        driver,
        "models/activate_model",
        {"version": version, "activated_at": time.time()},
        database=database,
    )
    if not records:
        record = get_model(driver, version, database)
        state = "unknown" if record is None else f"status {record.get('status')!r}"
        raise VersionError(f"cannot activate model version {version!r}: {state}")
    active = get_active(driver, database)
    assert active is not None
    logger.info("activated model version %s (slot %s)", version, active.slot)
    return active


# ------------------------------------------------------------- nodes created after training
def get_unembedded_ids(
    driver: Driver, version: str, label: str, database: str = "neo4j"
) -> list[str]:
    """Ids of the ``label`` nodes without a vector of ``version`` in its slot (created after it
    was trained; users without consent are left out). Empty for an unknown version."""
    record = get_model(driver, version, database)
    if record is None or not record.get("slot"):
        return []
    if label not in model.EMBEDDED_LABELS:
        raise VersionError(f"{label!r} does not take embeddings")
    records = execute(
        driver,
        "refresh/get_unembedded_ids",
        {"version": version},
        database=database,
        read=True,
        label=label,
        property=model.embedding_property(str(record["slot"])),
    )
    return [str(i) for i in records[0]["ids"]] if records else []


def write_node_vectors(
    driver: Driver,
    version: str,
    label: str,
    ids: np.ndarray | list[str],
    vectors: np.ndarray,
    *,
    batch_size: int = 2000,
    database: str = "neo4j",
) -> int:
    """Write ``vectors[k]`` to the node ``(label {id: ids[k]})`` in the slot of a *complete*
    version: vectors of nodes created after it was trained (``workers/refresh.py``). The
    slot's vector index exists and takes them in as they commit. Returns the nodes written
    (an id without a node is skipped)."""
    record = get_model(driver, version, database)
    if record is None or record.get("status") != "complete":
        raise VersionError(f"model version {version!r} is not complete")
    vectors = _checked_vectors(label, ids, vectors, int(record["dim"]), batch_size)
    keys = [str(i) for i in ids]
    prop = model.embedding_property(str(record["slot"]))
    written = 0
    for start in range(0, len(keys), batch_size):
        batch = np.ascontiguousarray(vectors[start : start + batch_size], dtype=np.float64)
        records = execute(
            driver,
            "writeback/set_embeddings",
            {"ids": keys[start : start + batch_size], "vectors": batch, "version": version},
            database=database,
            label=label,
            property=prop,
        )
        written += int(records[0]["written"]) if records else 0
    return written


def mark_refreshed(
    driver: Driver, version: str, written: int, database: str = "neo4j"
) -> int | None:
    """Set ``refreshed_at`` (epoch ms, now) on ``version`` if it is the active one, and add
    ``written`` to its ``refreshed_nodes``; returns ``refreshed_at``, or ``None`` when the
    version is no longer active."""
    records = execute(
        driver,
        "refresh/set_refreshed_at",
        {"version": version, "refreshed_at": int(time.time() * 1000), "written": written},
        database=database,
    )
    return int(records[0]["refreshed_at"]) if records else None
