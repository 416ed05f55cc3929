"""JDsearch sample: term-id queries, 4-level categories, history and test labels."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from graphstore import model
from graphstore.errors import InputError
from graphstore.sources.loaders import jdsearch

SEP = "\x18"


def raw_users(jd_dir: Path) -> list[dict[str, str]]:
    lines = (jd_dir / "user_behavior_data_sample.txt").read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]


def raw_products(jd_dir: Path) -> list[dict[str, str]]:
    lines = (jd_dir / "product_meta_data_sample.txt").read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]


def totals(rows: object) -> int:
    return sum(r["count"] for r in rows)  # type: ignore[attr-defined]


def test_counts_match_the_files(jd_dir: Path) -> None:
    source = jdsearch.load(jd_dir)
    users = raw_users(jd_dir)
    assert [u["id"] for u in source.users] == ["u1", "u2", "u3"]
    history = [
        (k, wid, kind, query)
        for k, u in enumerate(users, start=1)
        for wid, kind, query in zip(
            u["history_wid_list"].split("_"),
            u["history_type_list"].split("_"),
            u["history_qry_list"].split("_"),
            strict=True,
        )
    ]
    assert len(history) == 182 + 46 + 2
    kinds = Counter(kind for _, _, kind, _ in history)
    assert totals(source.interactions[model.PURCHASED]) == kinds["ORD"]
    assert totals(source.interactions[model.CLICKED]) == kinds["CLICK"] + kinds["CART"]
    assert model.VIEWED not in source.interactions  # no FLW in the sample
    products = raw_products(jd_dir)
    items = {i["id"] for i in source.items}
    assert items == {p["wid"] for p in products} | {wid for _, wid, _, _ in history}
    assert len(products) == 409
    queries = {" ".join(sorted(set(q.split(SEP)))) for _, _, _, q in history if q != "-1"}
    assert {q["id"] for q in source.queries} == queries
    led_to = Counter(
        (" ".join(sorted(set(q.split(SEP)))), wid) for _, wid, _, q in history if q != "-1"
    )
    assert {(r["query"], r["item"]): r["count"] for r in source.led_to} == dict(led_to)
    assert source.rejected == []


def test_four_level_categories(jd_dir: Path) -> None:
    source = jdsearch.load(jd_dir)
    products = raw_products(jd_dir)
    parents = {c["id"]: c["parent"] for c in source.categories}
    assert len(parents) == sum(len({p[f"cate_id_{k}"] for p in products}) for k in range(1, 5))
    first = products[0]
    leaf = next(r["category"] for r in source.item_categories if r["item"] == first["wid"])
    chain = [leaf]
    while parents[chain[-1]] is not None:
        chain.append(parents[chain[-1]])
    assert chain == [f"L{k}:{first[f'cate_id_{k}']}" for k in (4, 3, 2, 1)]
    names = {c["id"]: c["name"] for c in source.categories}
    assert names[chain[0]] == first["cate_name_4"].replace(SEP, " ")


def test_item_terms_are_name_term_ids(jd_dir: Path) -> None:
    source = jdsearch.load(jd_dir)
    first = raw_products(jd_dir)[0]
    terms = {r["term"] for r in source.item_terms if r["item"] == first["wid"]}
    assert terms == set(first["name"].split(SEP))


def test_spot_checked_user_timeline(jd_dir: Path) -> None:
    source = jdsearch.load(jd_dir, start_ts=1000.0)
    third = raw_users(jd_dir)[2]  # two clicks, no queries; gaps 0, 27, 49660
    clicked = {
        r["target"]: (r["count"], r["ts"])
        for r in source.interactions[model.CLICKED]
        if r["user"] == "u3"
    }
    wids = third["history_wid_list"].split("_")
    assert clicked == {wids[0]: (1, 1000.0), wids[1]: (1, 1027.0)}
    assert not [r for r in source.interactions[model.SEARCHED] if r["user"] == "u3"]


def test_include_test_adds_labelled_candidates(jd_dir: Path) -> None:
    base = jdsearch.load(jd_dir)
    source = jdsearch.load(jd_dir, include_test=True)
    positives = sum(
        1
        for u in raw_users(jd_dir)
        for label in u["candidate_label_list"].split("_")
        if float(label) > 0
    )
    added = totals(source.interactions[model.CLICKED]) - totals(base.interactions[model.CLICKED])
    assert added == positives == 5
    searched = totals(source.interactions[model.SEARCHED])
    assert searched - totals(base.interactions[model.SEARCHED]) == 3


def test_cart_mapping_option(jd_dir: Path) -> None:
    source = jdsearch.load(jd_dir, cart_as=model.VIEWED)
    carts = sum(u["history_type_list"].split("_").count("CART") for u in raw_users(jd_dir))
    assert totals(source.interactions[model.VIEWED]) == carts
    with pytest.raises(ValueError, match="cart_as"):
        jdsearch.load(jd_dir, cart_as=model.RATED)


META = (
    "\t".join(jdsearch.META_COLUMNS)
    + "\n"
    + "\t".join(["7", "1\x182", "b", "3", "10", "4", "20", "5", "30", "6", "40", "7", "s"])
    + "\n"
)
BEHAVIOR_HEADER = "\t".join(jdsearch.BEHAVIOR_COLUMNS) + "\n"


def behavior(
    qry: str, wid: str, kind: str, time: str, cands: str = "7", labels: str = "1.0"
) -> str:
    return "\t".join(["1\x182", cands, labels, qry, wid, kind, time]) + "\n"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (behavior("-1_-1", "7_7", "CLICK_CLICK", "0_1_2"), None),
        (behavior("-1", "7_7", "CLICK_ORD", "0_1_2"), "history lists differ in length"),
        (behavior("-1", "7", "CLICK", "0"), "history_time_list has 1 gaps, want 2"),
        (behavior("-1", "7", "LIKE", "0_1"), "unknown interaction type 'LIKE'"),
        (behavior("-1", "7", "CLICK", "0_soon"), "non-numeric time gap 'soon'"),
        (behavior("-1", "7", "CLICK", "0_1", labels="1.0_0.0"), "1 candidates but 2 labels"),
        (behavior("-1", "7", "CLICK", "0_1", labels="7.0"), "candidate label '7.0'"),
    ],
)
def test_malformed_behaviour(tmp_path: Path, line: str, reason: str | None) -> None:
    (tmp_path / "product_meta_data_sample.txt").write_text(META)
    file = tmp_path / "user_behavior_data_sample.txt"
    good = behavior("1\x182_-1", "7_8", "CART_ORD", "5_5_5")
    file.write_text(BEHAVIOR_HEADER + good + line)
    if reason is None:
        source = jdsearch.load(tmp_path)
        assert [u["id"] for u in source.users] == ["u1", "u2"]
        return
    with pytest.raises(InputError) as caught:
        jdsearch.load(tmp_path)
    assert (caught.value.path, caught.value.line) == (str(file), 3)
    assert reason in caught.value.reason
    source = jdsearch.load(tmp_path, on_error="reject")
    assert [u["id"] for u in source.users] == ["u1"]
    assert len(source.rejected) == 1 and source.rejected[0].startswith(f"{file}:3: ")


def test_missing_column_and_file(tmp_path: Path) -> None:
    (tmp_path / "product_meta_data_sample.txt").write_text("wid\tname\n1\t2\n")
    with pytest.raises(InputError, match=r"product_meta_data_sample\.txt:1: missing column"):
        jdsearch.load(tmp_path)
    (tmp_path / "product_meta_data_sample.txt").write_text(META)
    with pytest.raises(InputError, match="no file matching"):
        jdsearch.load(tmp_path)
