"""Export the graph (or a part) to the file format ``training`` reads (docs/export-format.md)."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from neo4j import Driver

from graphstore import model
from graphstore.driver import execute
from graphstore.errors import GraphStoreError
from graphstore.records import GraphSource

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
AGE_SCALE = 100.0


def user_features(rows: list[dict[str, Any]]) -> tuple[np.ndarray, list[str]]:
    """Static user features: scaled age (+ known flag), one-hot gender and occupation."""
    genders = sorted({str(r["gender"]) for r in rows if r.get("gender") is not None})
    occupations = sorted({str(r["occupation"]) for r in rows if r.get("occupation") is not None})
    names = (
        ["age", "age_known"] + [f"gender={g}" for g in genders] + [f"occ={o}" for o in occupations]
    )
    col = {n: k for k, n in enumerate(names)}
    x = np.zeros((len(rows), len(names)), dtype=np.float32)
    for k, r in enumerate(rows):
        if r.get("age") is not None:
            x[k, 0] = float(r["age"]) / AGE_SCALE
            x[k, 1] = 1.0
        if r.get("gender") is not None:
            x[k, col[f"gender={r['gender']}"]] = 1.0
        if r.get("occupation") is not None:
            x[k, col[f"occ={r['occupation']}"]] = 1.0
    return x, names


def write_export(
    out_dir: Path,
    nodes: dict[str, dict[str, Any]],
    edges: dict[tuple[str, str, str], dict[str, np.ndarray]],
    filters: dict[str, Any] | None = None,
) -> Path:
    """Write arrays atomically: a temp dir renamed into place, so no reader sees half a file.

    ``nodes[label]`` holds ``ids`` (list/array of str) and optionally ``x`` and ``features``;
    ``edges[(src, type, dst)]`` holds ``edge_index`` [2, E], ``time`` [E], ``weight`` [E].
    """
    tmp = out_dir.with_name(out_dir.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    arrays: dict[str, np.ndarray] = {}
    meta_nodes: dict[str, Any] = {}
    for label, part in nodes.items():
        ids = np.asarray(part["ids"], dtype=str)
        arrays[f"{label}.ids"] = ids
        if part.get("x") is not None:
            arrays[f"{label}.x"] = np.asarray(part["x"], dtype=np.float32)
        meta_nodes[label] = {"count": len(ids), "features": list(part.get("features", []))}
    for (src, rel, dst), part in edges.items():
        key = f"{src}__{rel}__{dst}"
        arrays[f"{key}.edge_index"] = np.asarray(part["edge_index"], dtype=np.int64)
        arrays[f"{key}.time"] = np.asarray(part["time"], dtype=np.float64)
        arrays[f"{key}.weight"] = np.asarray(part["weight"], dtype=np.float32)
    np.savez(tmp / "graph.npz", **arrays)  # type: ignore[arg-type]
    meta = {
        "format": FORMAT_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "node_types": meta_nodes,
        "edge_types": [list(k) for k in edges],
        "filters": filters or {"scope": "all"},
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


EdgeRow = tuple[str, str, float | None, float | None]


def _assemble(
    out_dir: Path,
    users: list[dict[str, Any]],
    ids: dict[str, list[str]],
    edge_rows: Callable[[str, str, str], Iterable[EdgeRow]],
    started: float,
) -> dict[str, Any]:
    """Index nodes, map edge rows (source id, target id, time, weight) and write the export.

    Rows whose endpoints are not exported (e.g. users without consent) are dropped."""
    x, names = user_features(users)
    nodes: dict[str, dict[str, Any]] = {
        model.USER: {"ids": [u["id"] for u in users], "x": x, "features": names}
    }
    for label, label_ids in ids.items():
        nodes[label] = {"ids": label_ids}
    index = {label: {nid: k for k, nid in enumerate(part["ids"])} for label, part in nodes.items()}
    edges: dict[tuple[str, str, str], dict[str, np.ndarray]] = {}
    n_edges = 0
    for src, rel, dst in model.EDGE_TYPES:
        s_map, t_map = index[src], index[dst]
        pairs = [(s_map.get(s), t_map.get(t), ts, w) for s, t, ts, w in edge_rows(src, rel, dst)]
        pairs = [p for p in pairs if p[0] is not None and p[1] is not None]
        if not pairs:
            continue
        edges[(src, rel, dst)] = {
            "edge_index": np.array([[p[0] for p in pairs], [p[1] for p in pairs]]),
            "time": np.array([math.nan if p[2] is None else float(p[2]) for p in pairs]),
            "weight": np.array([1.0 if p[3] is None else float(p[3]) for p in pairs]),
        }
        n_edges += len(pairs)
    if not nodes[model.USER]["ids"] or not nodes[model.ITEM]["ids"]:
        raise GraphStoreError("nothing to export: the graph has no (consenting) users or items")
    write_export(out_dir, nodes, edges)
    elapsed = time.perf_counter() - started
    logger.info("exported %d edges to %s in %.1fs", n_edges, out_dir, elapsed)
    return {
        "dir": str(out_dir),
        "edges": n_edges,
        "seconds": elapsed,
        "nodes": {k: len(v["ids"]) for k, v in nodes.items()},
    }


def export_subgraph(driver: Driver, out_dir: Path, *, database: str = "neo4j") -> dict[str, Any]:
    """Export the whole graph (consenting users only); returns a summary with counts."""
    started = time.perf_counter()
    users = [dict(r) for r in execute(driver, "export/get_users", database=database, read=True)]
    ids = {
        label: [
            r["id"]
            for r in execute(
                driver, "export/get_node_ids", database=database, read=True, label=label
            )
        ]
        for label in (model.ITEM, model.QUERY, model.TERM, model.CATEGORY)
    }

    def edge_rows(src: str, rel: str, dst: str) -> Iterable[EdgeRow]:
        records = execute(
            driver, "export/get_edges", database=database, read=True, src=src, type=rel, dst=dst
        )
        return ((r["s"], r["t"], r["ts"], r["w"]) for r in records)

    return _assemble(out_dir, users, ids, edge_rows, started)


def export_source(source: GraphSource, out_dir: Path) -> dict[str, Any]:
    """Export parsed rows straight to the training format, without Neo4j (offline evaluation
    of a dataset with the same files the pipeline trains on)."""
    started = time.perf_counter()
    users = [u for u in source.users if u.get("consent", True) is not False]
    ids = {
        model.ITEM: [r["id"] for r in source.items],
        model.QUERY: [r["id"] for r in source.queries],
        model.TERM: [r["id"] for r in source.terms],
        model.CATEGORY: [r["id"] for r in source.categories],
    }
    links: dict[tuple[str, str, str], Iterable[EdgeRow]] = {
        (model.QUERY, model.LED_TO, model.ITEM): (
            (r["query"], r["item"], None, r.get("count", 1)) for r in source.led_to
        ),
        (model.QUERY, model.HAS_TERM, model.TERM): (
            (r["query"], r["term"], None, 1.0) for r in source.query_terms
        ),
        (model.ITEM, model.HAS_TERM, model.TERM): (
            (r["item"], r["term"], None, 1.0) for r in source.item_terms
        ),
        (model.ITEM, model.IN_CATEGORY, model.CATEGORY): (
            (r["item"], r["category"], None, 1.0) for r in source.item_categories
        ),
        (model.CATEGORY, model.SUBCATEGORY_OF, model.CATEGORY): (
            (r["id"], r["parent"], None, 1.0) for r in source.categories if r.get("parent")
        ),
    }
    for rel, rows in source.interactions.items():
        dst = model.QUERY if rel == model.SEARCHED else model.ITEM
        links[(model.USER, rel, dst)] = (
            (r["user"], r["target"], r.get("ts"), r.get("weight", r.get("count"))) for r in rows
        )

    def edge_rows(src: str, rel: str, dst: str) -> Iterable[EdgeRow]:
        return links.get((src, rel, dst), ())

    return _assemble(out_dir, users, ids, edge_rows, started)
