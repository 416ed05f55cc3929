"""Long list parameters go to Neo4j as QuietList: a one-line repr for the driver's eager debug
formatting, and exactly the bytes a plain list packs to."""

from __future__ import annotations

from neo4j._codec.packstream.v1 import PackableBuffer, Packer

from graphstore.driver import QUIET_FROM, QuietList, quiet


def _packed(value: object) -> bytes:
    buffer = PackableBuffer()
    Packer(buffer).pack(value)
    return bytes(buffer.data)


def test_long_lists_are_quiet_and_short_values_untouched() -> None:
    rows = [[i, i + 1, 1, 1.7e9, 0.5] for i in range(QUIET_FROM + 1)]
    params = quiet({"rows": rows, "ids": ["a", "b"], "k": 3, "name": "x"})
    assert isinstance(params["rows"], QuietList) and params["rows"] == rows
    assert repr(params["rows"]) == f"<list of {QUIET_FROM + 1}>"
    assert type(params["ids"]) is list and params["k"] == 3 and params["name"] == "x"
    assert quiet(None) == {}


def test_a_quiet_list_packs_to_the_same_bytes_as_a_list() -> None:
    rows = [[i, f"u{i}", 1.7e9 + i, None, [0.25, -1.5]] for i in range(500)]
    assert _packed({"rows": QuietList(rows)}) == _packed({"rows": rows})
