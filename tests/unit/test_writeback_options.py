"""Vector index options: ranges checked before anything reaches Neo4j."""

from __future__ import annotations

import pytest

from graphstore.errors import GraphStoreError
from graphstore.writeback import DEFAULT_INDEX_OPTIONS, IndexOptions


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"m": 0}, "m must be in 1..512"),
        ({"m": 513}, "m must be in 1..512"),
        ({"ef_construction": 0}, "ef_construction must be in 1..3200"),
        ({"ef_construction": 3201}, "ef_construction must be in 1..3200"),
    ],
)
def test_out_of_range_options_are_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(GraphStoreError, match=message):
        IndexOptions(**kwargs)  # type: ignore[arg-type]


def test_params_name_the_statement_parameters() -> None:
    options = IndexOptions(m=24, ef_construction=200, quantization=True)
    assert options.params() == {"m": 24, "ef_construction": 200, "quantization": True}
    assert IndexOptions(m=1, ef_construction=3200).params()["ef_construction"] == 3200


def test_defaults_are_valid_and_unquantized() -> None:
    assert IndexOptions() == DEFAULT_INDEX_OPTIONS
    assert DEFAULT_INDEX_OPTIONS.quantization is False
