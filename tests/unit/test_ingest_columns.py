"""The loader's packed columns for the ingest procedure (``ingest.link_columns``): what they
carry, and which batches must go through Cypher instead (values the columns would store
differently)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from graphstore import ingest, model


class KnownIds(ingest.NodeIds):
    """Ids the load wrote itself; nothing is looked up in a graph."""

    def __init__(self, ids: dict[str, dict[Any, int]], absent: dict[str, set[Any]] | None = None):
        self._ids = ids
        self._absent = absent or {}
        self.looked_up = 0


IDS = {model.USER: {"u1": 10, "u2": 11}, model.ITEM: {"i1": 20, "i2": 21}}
CLICKED = ingest.interaction_part(model.CLICKED)


def decode(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    for key, dtype in (("source", "<i8"), ("target", "<i8"), ("count", "<i8")):
        if params[key] is not None:
            out[key] = np.frombuffer(params[key], dtype).tolist()
    for key in ("ts", "weight"):
        if params[key] is not None:
            out[key] = np.frombuffer(params[key], "<f8").tolist()
    return out


def test_columns_carry_ids_properties_and_gaps() -> None:
    batch: list[dict[str, Any]] = [
        {"user": "u1", "target": "i2", "count": 2, "ts": 1.7e9 + 0.25, "weight": 1.5},
        {"user": "u2", "target": "nope", "count": None, "ts": None, "weight": 2.0},
    ]
    params = ingest.link_columns(batch, CLICKED, KnownIds(IDS, {model.ITEM: {"nope"}}))
    assert params is not None
    got = decode(params)
    assert (got["type"], got["sourceLabel"], got["targetLabel"]) == ("CLICKED", "User", "Item")
    assert got["source"] == [10, 11]
    assert got["target"] == [21, -1]  # a missing endpoint: the procedure skips the row
    assert got["count"] == [2, ingest.NO_COUNT]
    assert got["ts"][0] == 1.7e9 + 0.25 and math.isnan(got["ts"][1])
    assert got["weight"] == [1.5, 2.0]


def test_parts_without_properties_send_null_columns() -> None:
    part = ingest.link_parts()[2]  # item_terms
    ids = {model.ITEM: {"i1": 20}, model.TERM: {"t": 30}}
    params = ingest.link_columns([{"item": "i1", "term": "t"}], part, KnownIds(ids))
    assert params is not None
    assert (params["count"], params["ts"], params["weight"]) == (None, None, None)
    led_to = ingest.link_parts()[0]
    ids = {model.QUERY: {"q": 5}, model.ITEM: {"i1": 20}}
    params = ingest.link_columns([{"query": "q", "item": "i1", "count": 3}], led_to, KnownIds(ids))
    assert params is not None and decode(params)["count"] == [3]
    assert params["ts"] is None


@pytest.mark.parametrize(
    "odd",
    [
        {"count": 2.0},  # Cypher would store a float
        {"count": True},
        {"count": 2**70},  # beyond int64
        {"ts": 1700000000},  # Cypher would store an integer
        {"weight": 1},
        {"weight": math.nan},  # Cypher would store NaN; the column would leave it unset
        {"ts": "2024-01-01"},
    ],
)
def test_values_the_columns_cannot_carry_go_through_cypher(odd: dict[str, Any]) -> None:
    row = {"user": "u1", "target": "i1", "count": 1, "ts": 1.7e9, "weight": 1.0, **odd}
    assert ingest.link_columns([row], CLICKED, KnownIds(IDS)) is None


def test_only_model_edge_types() -> None:
    bogus = ingest.LinkPart("x", "m", "c", model.ITEM, model.CLICKED, model.USER, ("a", "b"))
    with pytest.raises(ValueError, match="not in the graph model"):
        ingest.link_columns([], bogus, KnownIds(IDS))
