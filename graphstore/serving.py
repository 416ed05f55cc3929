"""Reads that serving needs, always pinned to one model version."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from neo4j import Driver

from graphstore import model
from graphstore.driver import execute
from graphstore.writeback import ActiveModel

Scored = tuple[str, str | None, float]

#: How many of a user's newest searches serving reads (in-memory explanations).
SEARCHES = 10


@dataclass(frozen=True)
class UserState:
    exists: bool
    consent: bool
    vector: np.ndarray | None
    #: Items the user interacted with, newest first.
    recent: tuple[str, ...]
    age: int | None = None
    gender: str | None = None
    occupation: str | None = None
    #: The user's segment of the active version (graphstore.segments), if any.
    segment: str | None = None
    #: Per item of ``recent``: the type of the newest interaction (``VIEWED``...).
    how: tuple[str, ...] = ()
    #: The items of ``recent`` the user ever bought.
    bought: frozenset[str] = frozenset()
    #: Query ids of the user's newest searches (at most :data:`SEARCHES`), newest first.
    searches: tuple[str, ...] = ()

    @property
    def seen(self) -> frozenset[str]:
        return frozenset(self.recent)


@dataclass(frozen=True)
class Explanation:
    """Graph evidence for one recommended item (any field may be missing)."""

    item_id: str
    led_query: str | None
    term_query: str | None
    term: str | None
    similar_id: str | None
    similar_title: str | None
    similar_how: str | None
    category: str | None
    segment: str | None
    segment_buyers: int
    #: How many users bought the item.
    purchases: int


def get_user_state(
    driver: Driver, user_id: str, active: ActiveModel, database: str = "neo4j"
) -> UserState:
    r = execute(
        driver,
        "serving/get_user_state",
        {"user_id": user_id, "version": active.version, "searches": SEARCHES},
        database=database,
        read=True,
        property=active.property,
    )[0]
    vec = None if r["vec"] is None else np.asarray(r["vec"], dtype=np.float32)
    age = r["age"]
    return UserState(
        exists=bool(r["exists"]),
        consent=bool(r["consent"]),
        vector=vec,
        recent=tuple(r["seen"]),
        age=int(age) if isinstance(age, int | float) else None,
        gender=r["gender"] if isinstance(r["gender"], str) else None,
        occupation=r["occupation"] if isinstance(r["occupation"], str) else None,
        segment=r["segment"],
        how=tuple(r["how"]),
        bought=frozenset(i for i, b in zip(r["seen"], r["bought"], strict=True) if b),
        searches=tuple(r["searches"]),
    )


@dataclass(frozen=True)
class ItemVectors:
    """The items of one model version: ``ids[k]`` has ``matrix[k]``, its categories (names,
    else ids) and its terms."""

    ids: list[str]
    titles: list[str | None]
    matrix: np.ndarray  # [I, D] float32
    categories: list[tuple[str, ...]]
    terms: list[frozenset[str]]


def get_item_vectors(driver: Driver, active: ActiveModel, database: str = "neo4j") -> ItemVectors:
    records = execute(
        driver,
        "serving/get_item_vectors",
        {"version": active.version},
        database=database,
        read=True,
        property=active.property,
    )
    matrix = (
        np.asarray([r["vec"] for r in records], dtype=np.float32)
        if records
        else np.zeros((0, active.dim), dtype=np.float32)
    )
    return ItemVectors(
        ids=[r["id"] for r in records],
        titles=[r["title"] for r in records],
        matrix=matrix,
        categories=[tuple(sorted(r["categories"])) for r in records],
        terms=[frozenset(r["terms"]) for r in records],
    )


@dataclass(frozen=True)
class SearchLinks:
    """A searched query: its text, the items it led to and its terms."""

    text: str
    led: frozenset[str]
    terms: frozenset[str]


def get_search_links(driver: Driver, database: str = "neo4j") -> dict[str, SearchLinks]:
    """Every query some user searched, by id (in-memory explanations)."""
    return {
        str(r["id"]): SearchLinks(str(r["text"]), frozenset(r["led"]), frozenset(r["terms"]))
        for r in execute(driver, "serving/get_search_links", database=database, read=True)
    }


def get_segment_purchases(
    driver: Driver, version: str, database: str = "neo4j"
) -> dict[str, tuple[str | None, dict[str, int]]]:
    """Per segment of ``version``: ``(name, {item id: members who bought it})``."""
    return {
        str(r["id"]): (r["name"], dict(zip(r["items"], map(int, r["buyers"]), strict=True)))
        for r in execute(
            driver,
            "serving/get_segment_purchases",
            {"version": version},
            database=database,
            read=True,
        )
    }


def get_model_refreshed_at(driver: Driver, version: str, database: str = "neo4j") -> int | None:
    """The ``refreshed_at`` (epoch ms) of ``version``'s Model node: set when vectors were
    written for items created after its activation; None when never."""
    records = execute(
        driver,
        "serving/get_model_refreshed_at",
        {"version": version},
        database=database,
        read=True,
    )
    value = records[0]["refreshed_at"] if records else None
    return None if value is None else int(value)


def get_popular_items(
    driver: Driver, k: int, database: str = "neo4j", category: str | None = None
) -> list[Scored]:
    """The ``k`` most interacted-with items (optionally within ``category``), best first."""
    return [
        (r["id"], r["title"], float(r["score"]))
        for r in execute(
            driver,
            "serving/get_popular_items",
            {"k": k, "category": category},
            database=database,
            read=True,
        )
    ]


def get_segment_popular_items(
    driver: Driver, segment: str, k: int, database: str = "neo4j"
) -> list[Scored]:
    """The ``k`` items most interacted with by the members of ``segment``."""
    return [
        (r["id"], r["title"], float(r["score"]))
        for r in execute(
            driver,
            "serving/get_segment_popular_items",
            {"segment": segment, "k": k},
            database=database,
            read=True,
        )
    ]


def get_category_items(driver: Driver, category: str, database: str = "neo4j") -> list[str] | None:
    """Ids of the items in ``category`` or its subcategories; None for an unknown category."""
    records = execute(
        driver, "serving/get_category_items", {"category": category}, database=database, read=True
    )
    return None if not records else [str(i) for i in records[0]["items"]]


def get_feature_neighbours(
    driver: Driver,
    active: ActiveModel,
    *,
    occupation: str,
    gender: str,
    age: int,
    k: int,
    window: int = 5,
    database: str = "neo4j",
) -> np.ndarray:
    """Vectors ``[n, D]`` (n ≤ k) of the consenting users nearest in static features."""
    records = execute(
        driver,
        "serving/get_feature_neighbours",
        {
            "occupation": occupation,
            "gender": gender,
            "age": age,
            "window": window,
            "k": k,
            "version": active.version,
        },
        database=database,
        read=True,
        property=active.property,
    )
    if not records:
        return np.zeros((0, active.dim), dtype=np.float32)
    return np.asarray([r["vec"] for r in records], dtype=np.float32)


def get_explanations(
    driver: Driver,
    user_id: str | None,
    item_ids: list[str],
    version: str | None,
    database: str = "neo4j",
) -> dict[str, Explanation]:
    """Graph evidence for each of ``item_ids`` (one read for all of them); ``user_id=None``
    leaves out the user's own history (non-personalized answers)."""
    if not item_ids:
        return {}
    out: dict[str, Explanation] = {}
    for r in execute(
        driver,
        "serving/get_explanations",
        {"user_id": user_id, "item_ids": item_ids, "version": version},
        database=database,
        read=True,
    ):
        out[r["item_id"]] = Explanation(
            item_id=r["item_id"],
            led_query=r["led_query"],
            term_query=r["term_query"],
            term=r["term"],
            similar_id=r["similar_id"],
            similar_title=r["similar_title"],
            similar_how=r["similar_how"],
            category=r["category"],
            segment=r["segment"],
            segment_buyers=int(r["segment_buyers"] or 0),
            purchases=int(r["purchases"] or 0),
        )
    return out


def get_policy_version(driver: Driver, model_version: str, database: str = "neo4j") -> int | None:
    """The newest policy version number of ``model_version`` (None when it has none)."""
    records = execute(
        driver,
        "serving/get_policy_version",
        {"model_version": model_version},
        database=database,
        read=True,
    )
    value = records[0]["version"] if records else None
    return None if value is None else int(value)


def get_query_suggestions(
    driver: Driver,
    active: ActiveModel,
    vec: np.ndarray,
    k: int,
    prefix: str | None,
    *,
    candidates: int = 2000,
    database: str = "neo4j",
) -> list[tuple[str, str, float]]:
    """``(query id, text, score)`` of the queries nearest to ``vec`` in the active version by
    Neo4j's vector index (score ``(1 + cosine) / 2``, approximate); with ``prefix``, only
    queries whose text starts with it (the query text index). The API ranks the version's query
    vectors in memory instead (:func:`get_query_vectors`, ``api/nearest.py``); this is the
    graph's own answer, which tests compare it with."""
    params: dict[str, Any] = {"vec": vec.tolist(), "k": k, "version": active.version}
    if prefix:
        name = "serving/get_prefix_query_suggestions"
        params.update(prefix=prefix, candidates=candidates)
    else:
        name = "serving/get_query_suggestions"
        params["index"] = model.vector_index_name(model.QUERY, active.slot)
    return [
        (r["id"], r["text"], float(r["score"]))
        for r in execute(
            driver, name, params, database=database, read=True, property=active.property
        )
    ]


def get_popular_queries(
    driver: Driver, k: int, prefix: str = "", database: str = "neo4j"
) -> list[tuple[str, str, float]]:
    """The most searched queries whose text starts with ``prefix``."""
    return [
        (r["id"], r["text"], float(r["score"]))
        for r in execute(
            driver,
            "serving/get_popular_queries",
            {"prefix": prefix, "k": k},
            database=database,
            read=True,
        )
    ]


def get_similar_items(
    driver: Driver, item_id: str, k: int, active: ActiveModel, database: str = "neo4j"
) -> list[Scored] | None:
    """Nearest items by Neo4j's vector index in the active version (score ``(1 + cosine) / 2``,
    approximate); None for an unknown item. The API ranks the item matrix in memory instead
    (``api/nearest.py``); this is the graph's own answer, which tests compare it with."""
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
    if not records and not item_exists(driver, item_id, database):
        return None
    return [(r["id"], r["title"], float(r["score"])) for r in records]


def item_exists(driver: Driver, item_id: str, database: str = "neo4j") -> bool:
    """Whether an item of that id exists (with or without a vector)."""
    return bool(
        execute(driver, "serving/item_exists", {"item_id": item_id}, database=database, read=True)
    )


def _pages(
    driver: Driver, statement: str, params: dict[str, Any], active: ActiveModel, database: str
) -> Iterator[Any]:
    """The one record of each page of a paged serving statement (``$after``: the last id of
    the page before; the record's ``last``: this page's, null once the pages are over)."""
    after = ""
    while True:
        records = execute(
            driver,
            statement,
            {**params, "after": after},
            database=database,
            read=True,
            property=active.property,
        )
        r = records[0] if records else None
        if r is None or r["last"] is None:
            return
        yield r
        after = str(r["last"])


@dataclass(frozen=True)
class QueryVectors:
    """The queries of one model version: ``ids[k]`` has ``matrix[k]`` and ``texts[k]`` (None
    when the query has no text)."""

    ids: list[str]
    texts: list[str | None]
    matrix: np.ndarray  # [Q, D] float32


def get_query_vectors(
    driver: Driver, active: ActiveModel, *, page: int = 20_000, database: str = "neo4j"
) -> QueryVectors:
    """Every query holding a vector of ``active``'s version, read in pages of ``page`` queries
    by id (one record per page)."""
    ids: list[str] = []
    texts: list[str | None] = []
    chunks: list[np.ndarray] = []
    params = {"page": page, "version": active.version}
    for r in _pages(driver, "serving/get_query_vectors_page", params, active, database):
        if r["ids"]:
            ids += [str(i) for i in r["ids"]]
            texts += [t if isinstance(t, str) else None for t in r["texts"]]
            chunks.append(np.asarray(r["vecs"], dtype=np.float32).reshape(len(r["ids"]), -1))
    matrix = np.concatenate(chunks) if chunks else np.zeros((0, active.dim), np.float32)
    return QueryVectors(ids, texts, matrix)


@dataclass(frozen=True)
class UserPage:
    """One page of :func:`iter_user_snapshot`: ``ids[k]`` has ``vectors[k]``, ``seen[k]``
    (item ids, newest first), ``how[k]`` and ``bought[k]`` (per seen item: the newest
    interaction's type, whether ever bought), ``searches[k]`` (query ids, newest first) and
    ``segments[k]`` (segment id of the version, '' for none)."""

    ids: list[str]
    vectors: np.ndarray  # [n, D] float32
    seen: list[list[str]]
    how: list[list[str]]
    bought: list[list[bool]]
    searches: list[list[str]]
    segments: list[str]


def iter_user_snapshot(
    driver: Driver, active: ActiveModel, *, page: int = 20_000, database: str = "neo4j"
) -> Iterator[UserPage]:
    """Every consenting user holding a vector of ``active``'s version, with the items seen,
    in pages of at most ``page`` users read column-wise (one record per page), by id."""
    params = {"page": page, "version": active.version, "searches": SEARCHES}
    for r in _pages(driver, "serving/get_user_snapshot_page", params, active, database):
        ids = [str(i) for i in r["ids"]]
        vecs = (
            np.asarray(r["vecs"], dtype=np.float32)
            if ids
            else np.zeros((0, active.dim), dtype=np.float32)
        )
        yield UserPage(
            ids,
            vecs.reshape(len(ids), -1),
            [list(s) for s in r["seen"]],
            [list(h) for h in r["how"]],
            [list(b) for b in r["bought"]],
            [list(q) for q in r["searches"]],
            [str(s) for s in r["segments"]],
        )
