"""Reads that serving needs, always pinned to one model version."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from neo4j import Driver

from graphstore.driver import execute
from graphstore.writeback import ActiveModel


@dataclass(frozen=True)
class UserState:
    exists: bool
    consent: bool
    vector: np.ndarray | None
    seen: frozenset[str]


def get_user_state(
    driver: Driver, user_id: str, active: ActiveModel, database: str = "neo4j"
) -> UserState:
    r = execute(
        driver,
        "serving/get_user_state",
        {"user_id": user_id, "version": active.version},
        database=database,
        read=True,
        property=active.property,
    )[0]
    vec = None if r["vec"] is None else np.asarray(r["vec"], dtype=np.float32)
    return UserState(bool(r["exists"]), bool(r["consent"]), vec, frozenset(r["seen"]))


def get_item_vectors(
    driver: Driver, active: ActiveModel, database: str = "neo4j"
) -> tuple[list[str], list[str | None], np.ndarray]:
    records = execute(
        driver,
        "serving/get_item_vectors",
        {"version": active.version},
        database=database,
        read=True,
        property=active.property,
    )
    ids = [r["id"] for r in records]
    titles = [r["title"] for r in records]
    matrix = (
        np.asarray([r["vec"] for r in records], dtype=np.float32)
        if records
        else np.zeros((0, active.dim), dtype=np.float32)
    )
    return ids, titles, matrix


def get_popular_items(
    driver: Driver, k: int, database: str = "neo4j"
) -> list[tuple[str, str | None, float]]:
    return [
        (r["id"], r["title"], float(r["score"]))
        for r in execute(
            driver, "serving/get_popular_items", {"k": k}, database=database, read=True
        )
    ]


def get_similar_items(
    driver: Driver, item_id: str, k: int, active: ActiveModel, database: str = "neo4j"
) -> list[tuple[str, str | None, float]] | None:
    """Nearest items by cosine similarity in the active version; None for an unknown item."""
    from graphstore import model

    params = {
        "item_id": item_id,
        "k": k,
        "version": active.version,
        "index": model.vector_index_name(model.ITEM, active.slot),
    }
    records = execute(
        driver,
        "serving/get_similar_items",
        params,
        database=database,
        read=True,
        property=active.property,
    )
    if not records and not execute(
        driver, "serving/item_exists", {"item_id": item_id}, database=database, read=True
    ):
        return None
    return [(r["id"], r["title"], float(r["score"])) for r in records]
