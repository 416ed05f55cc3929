"""The generic format's file variants: separators (detected or given), epoch units, repeated
event ids, the id rule, category names, and items that no event names."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from graphstore import model
from graphstore.errors import InputError
from graphstore.records import GraphSource
from graphstore.sources.loaders import builder, generic, tables, values
from tests.unit.loaders.conftest import EVENTS_CSV, ITEMS_CSV, USERS_CSV

TS = datetime(2024, 1, 1, 10, 0, tzinfo=UTC).timestamp()


def _as(text: str, delimiter: str) -> str:
    """A comma-separated fixture with another separator (the fixture's values hold none)."""
    return text.replace(",", delimiter)


def _interactions(source: GraphSource) -> dict[str, set[tuple[str, str, float]]]:
    return {
        rel: {(r["user"], r["target"], r["ts"]) for r in rows}
        for rel, rows in source.interactions.items()
    }


def _snapshot(source: GraphSource) -> tuple[object, ...]:
    return (
        sorted(u["id"] for u in source.users),
        sorted(i["id"] for i in source.items),
        sorted((c["id"], c["name"]) for c in source.categories),
        _interactions(source),
        source.rejected,
    )


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_separators_load_like_commas_detected_or_given(
    delimiter: str, make_generic: Callable[..., Path], generic_dir: Path, tmp_path: Path
) -> None:
    # "|" also separates several category paths: quote that value in a "|"-separated file
    items = ITEMS_CSV.replace("Games > Shooters|Deals", '"Games > Shooters|Deals"')
    other = make_generic(
        tmp_path / "other",
        users=_as(USERS_CSV, delimiter),
        items=_as(items, delimiter),
        events=_as(EVENTS_CSV, delimiter),
    )
    expected = _snapshot(generic.load(generic_dir))
    assert _snapshot(generic.load(other)) == expected
    assert _snapshot(generic.load(other, delimiter=delimiter)) == expected


def test_detection_reads_the_header_not_the_values(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('id,"a;b;c",name\n1,x;y;z|w,n\n')
    assert tables.detect_delimiter(path) == ","
    path.write_text("id;name\n1;a,b,c\n")
    assert tables.detect_delimiter(path) == ";"
    path.write_text("id\n1\n")
    assert tables.detect_delimiter(path) == ","


def test_wrong_separator_names_the_one_in_the_header(
    make_generic: Callable[..., Path], tmp_path: Path
) -> None:
    directory = make_generic(tmp_path / "g", events=_as(EVENTS_CSV, ";"))
    with pytest.raises(InputError) as info:
        generic.load(directory, delimiter=",")
    message = str(info.value)
    assert message.startswith(f"{directory / 'events.csv'}:1: missing column 'user'")
    assert "the header holds ';'" in message and "--delimiter" in message


def test_delimiter_must_be_one_character(generic_dir: Path) -> None:
    with pytest.raises(ValueError, match="one character"):
        generic.load(generic_dir, delimiter=";;")


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (f"{TS:.0f}", "s"),
        (f"{TS * 1e3:.0f}", "ms"),
        (f"{TS * 1e6:.0f}", "us"),
        (f"{TS * 1e9:.0f}", "ns"),
        (f"{TS * 1e3 + 0.5:.1f}", "ms"),
    ],
)
def test_epoch_units_are_recognised_by_magnitude(value: str, unit: str) -> None:
    ts, found = values.parse_ts_unit(value)
    assert found == unit
    assert ts == pytest.approx(TS, abs=1e-3)


def test_epoch_too_large_is_refused() -> None:
    with pytest.raises(ValueError, match="too large"):
        values.parse_ts("1" + "0" * 21)


def test_milliseconds_file_loads_at_the_right_dates(
    make_generic: Callable[..., Path], tmp_path: Path
) -> None:
    events = "user,type,item,ts\nu1,view,i1,1704103200000\nu2,click,i3,1704103260500\n"
    source = generic.load(make_generic(tmp_path / "ms", users="", events=events))
    rows = _interactions(source)
    assert rows[model.VIEWED] == {("u1", "i1", 1704103200.0)}
    assert rows[model.CLICKED] == {("u2", "i3", 1704103260.5)}
    assert datetime.fromtimestamp(1704103200.0, UTC).year == 2024


def test_mixed_epoch_units_are_refused_with_file_and_line(
    make_generic: Callable[..., Path], tmp_path: Path
) -> None:
    events = "user,type,item,ts\nu1,view,i1,1704103200000\nu2,click,i3,1704103260\n"
    directory = make_generic(tmp_path / "mixed", users="", events=events)
    with pytest.raises(InputError) as info:
        generic.load(directory)
    assert str(info.value).startswith(f"{directory / 'events.csv'}:3: timestamp '1704103260'")
    assert "line 2's was in ms" in str(info.value)


def test_repeated_event_ids_are_counted(generic_dir: Path) -> None:
    source = generic.load(generic_dir)
    assert source.skipped == {"events.csv: repeated event_id": 1}  # e8 twice in the fixture


def test_ids_outside_the_rule_are_refused_with_file_and_line(
    make_generic: Callable[..., Path], tmp_path: Path
) -> None:
    items = ITEMS_CSV + "i 5,Space Item,1,\n"
    directory = make_generic(tmp_path / "ids", items=items)
    with pytest.raises(InputError) as info:
        generic.load(directory)
    assert str(info.value).startswith(f"{directory / 'items.csv'}:6: item id 'i 5' is not a valid")
    events = EVENTS_CSV + "e10,u1,view,i1/2,,2024-01-04T00:00:00Z,\n"
    directory = make_generic(tmp_path / "ids2", events=events)
    source = generic.load(directory, on_error="reject")
    assert len(source.rejected) == 1
    assert source.rejected[0].startswith(f"{directory / 'events.csv'}:12: item 'i1/2'")


def test_every_loader_checks_ids_through_the_builder() -> None:
    rows = builder.SourceBuilder()
    with pytest.raises(ValueError, match="not a valid id"):
        rows.add_user("../etc")
    with pytest.raises(ValueError, match="not a valid id"):
        rows.add_item("")


def test_items_that_no_event_names_are_loaded(generic_dir: Path) -> None:
    source = generic.load(generic_dir)
    named = {r["target"] for rows in source.interactions.values() for r in rows}
    assert "i4" not in named and "i4" in {i["id"] for i in source.items}


def test_categories_file_names_numeric_categories(
    make_generic: Callable[..., Path], tmp_path: Path
) -> None:
    items = "id,title,category\ni1,Racing Wheel,200\ni2,Headset,594 > 12\n"
    events = "user,type,item,ts\nu1,view,i1,1704103200\n"
    directory = make_generic(tmp_path / "cats", users="", items=items, events=events)
    (directory / "categories.csv").write_text(
        "id;name\n200;Video games\n594;Audio\n594 > 12;Headphones\n999;Unused\n"
    )
    source = generic.load(directory)
    names = {c["id"]: c["name"] for c in source.categories}
    assert names == {"200": "Video games", "594": "Audio", "594 > 12": "Headphones"}
    assert source.skipped == {"categories.csv: ids of no category in the source": 1}


def test_categories_file_with_a_bad_row(make_generic: Callable[..., Path], tmp_path: Path) -> None:
    directory = make_generic(tmp_path / "cats")
    (directory / "categories.csv").write_text("id,name\nDeals,Offers\nDeals,Again\n")
    with pytest.raises(InputError, match=r"categories.csv:3: duplicate category id 'Deals'"):
        generic.load(directory)
    source = generic.load(directory, on_error="reject")
    assert {c["id"]: c["name"] for c in source.categories}["Deals"] == "Offers"
    assert source.rejected == [f"{directory / 'categories.csv'}:3: duplicate category id 'Deals'"]
