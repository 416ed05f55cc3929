"""Category names: codes read as "category 200" in text, and a names table (``id,name``)
gives any source's categories their names."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphstore.errors import InputError
from graphstore.segments import segment_name
from graphstore.sources.loaders import categories
from graphstore.sources.loaders.amazon import load as load_amazon
from graphstore.sources.text import category_label


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("200", "category 200"),
        ("L2:1234", "category L2:1234"),
        ("1234 5678", "category 1234 5678"),
        ("Video games", "Video games"),
        ("Xbox 360 Games", "Xbox 360 Games"),
        ("  Audio  ", "Audio"),
    ],
)
def test_codes_say_that_they_are_categories(name: str, shown: str) -> None:
    assert category_label(name) == shown


def test_segment_named_after_codes_says_what_they_are() -> None:
    assert segment_name(["200", "594"]) == "category 200 & category 594"
    assert segment_name(["Video games", "594"], ["kalo"]) == ("Video games & category 594 · “kalo”")


def _din(tmp_path: Path) -> Path:
    path = tmp_path / "din.csv"
    path.write_text("user_id,item_id,time,cate_id\nu1,i1,1704103200,200\nu2,i2,1704103300,594\n")
    return path


def test_names_table_renames_a_sources_categories(tmp_path: Path) -> None:
    source = load_amazon(_din(tmp_path))
    names_file = tmp_path / "names.tsv"
    names_file.write_text("id\tname\n200\tVideo games\n999\tUnused\n")
    named = categories.name_categories(
        source, categories.read_category_names(names_file), names_file.name
    )
    assert {c["id"]: c["name"] for c in named.categories} == {"200": "Video games", "594": "594"}
    assert named.skipped == {"names.tsv: ids of no category in the source": 1}
    assert {c["id"]: c["name"] for c in source.categories}["200"] == "200"  # a copy


def test_names_table_needs_both_columns(tmp_path: Path) -> None:
    names_file = tmp_path / "names.csv"
    names_file.write_text("id,label\n200,Video games\n")
    with pytest.raises(InputError, match=r"names.csv:1: missing column 'name'"):
        categories.read_category_names(names_file)
    names_file.write_text("id,name\n200,\n")
    with pytest.raises(InputError, match=r"names.csv:2: category '200' has an empty name"):
        categories.read_category_names(names_file)
