"""Market segments of a model version in the graph (see ``docs/segments.md``).

``(:Segment {id: "<version>:<n>", model_version, n, name, size, click_rate, purchase_rate,
top_items, top_queries, top_categories, top_terms})``, ``(:User)-[:IN_SEGMENT {score}]->``
and ``(:Segment)-[:AFFINITY {lift, count}]->(:Category|:Term)``.

Labels: ``:Segment`` means "segment of the active model version", so a plain
``MATCH (s:Segment)`` never mixes versions. The segments of every other version — older ones
kept for rollback, and a new version's while they are written and until it is activated —
carry ``:ArchivedSegment`` instead, with the same properties and relationships. Segments are
written as ``:ArchivedSegment``; ``segments/mark_model_segmented`` promotes them when the
version is already active, and ``models/activate_model`` swaps the labels in the transaction
that flips ``(:Model).active``. Statements about one version (lifts, listing, migration)
match both labels.

Lifetime: a version's segments live as long as the version can be served or rolled back to.
They are removed when their ``(:Model)`` is deleted or marked ``superseded`` (its embedding slot
is reused by a newer version) — by :func:`prune_segments`, which every computation runs first.
So the active version and the one before it both have segments, and migration between them can
be measured. ``(:Model).segments`` (the number of segments) marks a version's segments
complete; computing again is then a no-op unless forced.

Definitions: ``click_rate`` = members' clicks per member; ``purchase_rate`` = members'
purchases per click (conversion). Lifts as in :mod:`training.segments`. Clustering is
training's (:func:`training.segments.cluster_users`); :func:`workers.segment_tasks.segment_version`
runs the two together, so this module never imports training.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from neo4j import Driver

from graphstore import model
from graphstore.driver import execute
from graphstore.errors import GraphStoreError
from graphstore.sources.text import category_label

logger = logging.getLogger(__name__)

#: How many over-indexing features are kept per segment.
TOP_ITEMS = 5
TOP_QUERIES = 5
TOP_CATEGORIES = 3
TOP_TERMS = 8


class SegmentStoreError(GraphStoreError):
    """Segments cannot be computed or read for a model version."""


@dataclass
class SegmentSummary:
    version: str
    k: int
    criterion: str
    silhouette: float | None
    skipped: bool = False
    segments: list[dict[str, Any]] = field(default_factory=list)
    silhouette_by_k: dict[int, float] = field(default_factory=dict)
    eigengap_by_k: dict[int, float] = field(default_factory=dict)
    neighbourhood: bool = False


def segment_id(version: str, n: int) -> str:
    return f"{version}:{n}"


def prune_segments(driver: Driver, database: str = "neo4j") -> int:
    """Delete segments whose model version is gone or superseded; returns how many."""
    records = execute(driver, "segments/delete_stale_segments", database=database)
    return int(records[0]["deleted"]) if records else 0


def delete_segments(driver: Driver, version: str, database: str = "neo4j") -> int:
    records = execute(driver, "segments/delete_segments", {"version": version}, database=database)
    return int(records[0]["deleted"]) if records else 0


def _slot_property(driver: Driver, version: str, database: str) -> str:
    """The embedding property of a complete version's slot."""
    record = complete_model(driver, version, database)
    return model.embedding_property(str(record["slot"]))


def read_user_vectors(
    driver: Driver, version: str, database: str = "neo4j"
) -> tuple[list[str], np.ndarray]:
    """The version's user embeddings from its slot property (ids sorted)."""
    prop = _slot_property(driver, version, database)
    rows = execute(
        driver,
        "segments/get_user_vectors",
        {"version": version},
        database=database,
        read=True,
        property=prop,
    )
    if not rows:
        raise SegmentStoreError(f"model version {version!r} has no user embeddings in the graph")
    ids = [str(r["id"]) for r in rows]
    return ids, np.asarray([r["vec"] for r in rows], dtype=np.float32)


@dataclass
class Neighbourhood:
    """What a version's users' neighbourhood vectors are made of: the item embeddings and the
    user → item interactions as row numbers (users in the order they were asked for)."""

    item_ids: list[str]
    item_vectors: np.ndarray  # [I, D]
    user_index: np.ndarray  # [E] row of the user
    item_index: np.ndarray  # [E] row of the item
    weights: np.ndarray  # [E] summed event counts


def read_neighbourhood(
    driver: Driver, version: str, user_ids: Sequence[str], database: str = "neo4j"
) -> Neighbourhood | None:
    """The version's item embeddings and the clicks, ratings and purchases of ``user_ids``;
    None when the version has no item embeddings."""
    prop = _slot_property(driver, version, database)
    items = execute(
        driver,
        "segments/get_item_vectors",
        {"version": version},
        database=database,
        read=True,
        property=prop,
    )
    if not items:
        return None
    item_row = {str(r["id"]): k for k, r in enumerate(items)}
    user_row = {str(u): k for k, u in enumerate(user_ids)}
    users_idx: list[int] = []
    items_idx: list[int] = []
    weights: list[float] = []
    for r in execute(driver, "segments/get_user_item_weights", database=database, read=True):
        u, i = user_row.get(str(r["user"])), item_row.get(str(r["item"]))
        if u is not None and i is not None:
            users_idx.append(u)
            items_idx.append(i)
            weights.append(float(r["weight"]))
    return Neighbourhood(
        item_ids=list(item_row),
        item_vectors=np.asarray([r["vec"] for r in items], dtype=np.float32),
        user_index=np.asarray(users_idx, dtype=np.int64),
        item_index=np.asarray(items_idx, dtype=np.int64),
        weights=np.asarray(weights, dtype=np.float64),
    )


def complete_model(driver: Driver, version: str, database: str) -> dict[str, Any]:
    from graphstore.writeback import get_model

    record = get_model(driver, version, database)
    if record is None:
        raise SegmentStoreError(f"no model version {version!r}")
    if record.get("status") != "complete":
        raise SegmentStoreError(
            f"model version {version!r} has status {record.get('status')!r}; segments need a "
            "complete version"
        )
    return record


def _clean(label: str) -> str:
    return " ".join(str(label).split())


def segment_name(
    categories: Sequence[str], terms: Sequence[str] = (), queries: Sequence[str] = ()
) -> str:
    """A readable name from the most over-indexing categories, search terms and queries, e.g.
    ``"Kalo mi & Tefe ra · “kalo”"``. Arguments are ordered by decreasing lift."""
    cats = [category_label(c) for c in categories if _clean(c)][:2]
    words = [_clean(t) for t in (*terms, *queries) if _clean(t)]
    word = next((w for w in words if all(w.lower() not in c.lower() for c in cats)), "")
    if not word and words:
        word = words[0]
    parts = [" & ".join(cats)] if cats else []
    if word:
        parts.append(f"“{word}”")
    return " · ".join(parts) or "General audience"


def unique_names(names: Sequence[str]) -> list[str]:
    """Names made unique by suffixing repeats with ``(2)``, ``(3)``…"""
    seen: dict[str, int] = {}
    out: list[str] = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def write_segmentation(
    driver: Driver,
    version: str,
    user_ids: Sequence[str],
    labels: np.ndarray,
    scores: np.ndarray,
    k: int,
    *,
    batch_size: int = 5000,
    database: str = "neo4j",
) -> int:
    """Create the version's segment nodes and every user's IN_SEGMENT relationship."""
    sizes = np.bincount(np.asarray(labels, dtype=np.int64), minlength=k)
    execute(
        driver,
        "segments/create_segments",
        {
            "version": version,
            "segments": [
                {"id": segment_id(version, n), "n": n, "size": int(sizes[n])} for n in range(k)
            ],
            "created_at": time.time(),
        },
        database=database,
    )
    written = 0
    for start in range(0, len(user_ids), batch_size):
        rows = [
            {"user": u, "segment": segment_id(version, int(n)), "score": float(s)}
            for u, n, s in zip(
                user_ids[start : start + batch_size],
                labels[start : start + batch_size],
                scores[start : start + batch_size],
                strict=True,
            )
        ]
        records = execute(driver, "segments/merge_memberships", {"rows": rows}, database=database)
        written += int(records[0]["written"]) if records else 0
    return written


def _lifts(
    driver: Driver, name: str, version: str, min_count: int, database: str
) -> dict[str, list[dict[str, Any]]]:
    """Per segment id, the over-indexing (lift > 1) features, highest lift first."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    rows = execute(
        driver,
        f"segments/{name}",
        {"version": version, "min_count": min_count},
        database=database,
        read=True,
    )
    for r in rows:
        if r["lift"] > 1.0:
            out[r["segment"]].append(
                {
                    "id": r["id"],
                    "name": r["name"],
                    "lift": round(float(r["lift"]), 3),
                    "count": r["count"],
                }
            )
    return out


def profile_segments(
    driver: Driver, version: str, *, min_count: int = 3, database: str = "neo4j"
) -> list[dict[str, Any]]:
    """Name each segment after what it over-indexes on, store its profile and AFFINITY
    relationships; returns the profiles."""
    cats = _lifts(driver, "get_category_lift", version, min_count, database)
    terms = _lifts(driver, "get_term_lift", version, min_count, database)
    queries = _lifts(driver, "get_query_lift", version, min_count, database)
    items = _lifts(driver, "get_item_lift", version, min_count, database)
    activity = execute(
        driver, "segments/get_segment_activity", {"version": version}, database=database
    )
    ids = [str(r["segment"]) for r in activity]
    names = unique_names(
        [
            segment_name(
                [c["name"] for c in cats[sid][:TOP_CATEGORIES]],
                [t["name"] for t in terms[sid][:TOP_TERMS]],
                [q["name"] for q in queries[sid][:TOP_QUERIES]],
            )
            for sid in ids
        ]
    )
    rows: list[dict[str, Any]] = []
    for r, name in zip(activity, names, strict=True):
        sid = str(r["segment"])
        members = int(r["members"])
        clicks = int(r["clicks"])
        rows.append(
            {
                "id": sid,
                "name": name,
                "size": members,
                "click_rate": round(clicks / members, 4) if members else 0.0,
                "purchase_rate": round(int(r["purchases"]) / clicks, 4) if clicks else 0.0,
                "top_items": [x["id"] for x in items[sid][:TOP_ITEMS]],
                "top_queries": [x["id"] for x in queries[sid][:TOP_QUERIES]],
                "top_categories": [x["id"] for x in cats[sid][:TOP_CATEGORIES]],
                "top_terms": [x["id"] for x in terms[sid][:TOP_TERMS]],
            }
        )
    execute(driver, "segments/set_segment_profiles", {"rows": rows}, database=database)
    for label, found, top in (
        (model.CATEGORY, cats, TOP_CATEGORIES),
        (model.TERM, terms, TOP_TERMS),
    ):
        links = [
            {"segment": sid, "target": x["id"], "lift": x["lift"], "count": x["count"]}
            for sid in ids
            for x in found[sid][:top]
        ]
        if links:
            execute(
                driver,
                "segments/merge_affinities",
                {"rows": links},
                database=database,
                label=label,
            )
    return rows


def list_segments(driver: Driver, version: str, database: str = "neo4j") -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in execute(
            driver, "segments/list_segments", {"version": version}, database=database, read=True
        )
    ]


def get_assignments(
    driver: Driver, version: str, database: str = "neo4j"
) -> dict[str, tuple[int, float]]:
    """User id → (segment number, membership score) in one version."""
    rows = execute(
        driver,
        "segments/get_segment_assignments",
        {"version": version},
        database=database,
        read=True,
    )
    return {str(r["user"]): (int(r["n"]), float(r["score"])) for r in rows}
