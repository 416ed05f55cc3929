"""The bulk path's import files (no Neo4j): nulls stay nulls and empty strings stay strings,
defaults as online, one node per id, missing parent categories become nodes, link pairs are
deduplicated and rows with a missing endpoint are counted, not written."""

from __future__ import annotations

import csv
from pathlib import Path

from dpgcn.bulk_import import import_command, write_import_files
from dpgcn.neo4j_install import Neo4jServerSpec
from graphstore import model
from graphstore.records import GraphSource


def source() -> GraphSource:
    return GraphSource(
        name="t",
        users=[
            {"id": "u1", "age": 30, "gender": "", "occupation": None, "consent": None},
            {"id": "u2", "age": None, "gender": "F", "occupation": 'say "hi"', "consent": False},
            {"id": "u1", "age": 99, "gender": "M", "occupation": None, "consent": True},
        ],
        items=[{"id": "i1", "title": "two\nlines", "price": 2.5}],
        categories=[{"id": "c0.1", "name": "Leaf", "parent": "c0"}],
        interactions={
            model.CLICKED: [
                {"user": "u1", "target": "i1", "count": 2, "ts": 1.25, "weight": 2.0},
                {"user": "u9", "target": "i1", "count": 1, "ts": 1.0, "weight": 1.0},
            ]
        },
        item_categories=[{"item": "i1", "category": "c0.1"}, {"item": "i1", "category": "c0.1"}],
    )


def test_node_files(tmp_path: Path) -> None:
    files = write_import_files(source(), tmp_path)
    users = (tmp_path / "nodes-User.csv").read_text().splitlines()
    assert users[0] == "id:ID(User),age:long,gender,occupation,consent:boolean"
    # u1 once (first row), empty gender quoted, null occupation empty, consent defaults true
    assert users[1:] == ['"u1",30,"",,true', '"u2",,"F","say ""hi""",false']
    assert files.summary.rows["users"] == 2 and files.summary.written["users"] == 2
    categories = (tmp_path / "nodes-Category.csv").read_text().splitlines()
    assert categories[1:] == ['"c0.1","Leaf"', '"c0",']  # the parent, with its id only
    sub = (tmp_path / "rels-SUBCATEGORY_OF.csv").read_text().splitlines()
    assert sub[1:] == ["c0.1,c0"]
    assert files.multiline  # the item title has a line break


def test_relationship_files(tmp_path: Path) -> None:
    files = write_import_files(source(), tmp_path)
    with (tmp_path / "rels-CLICKED.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        [":START_ID(User)", ":END_ID(Item)", "count:long", "ts:double", "weight:double"],
        ["u1", "i1", "2", "1.25", "2.0"],
    ]
    assert files.summary.unmatched == {model.CLICKED: 1}  # u9 has no node
    assert files.summary.written["item_categories"] == 1  # the pair once
    spec = Neo4jServerSpec(home=tmp_path / "h", cache=tmp_path / "c", secrets_dir=tmp_path / "s")
    argv = import_command(spec, "java", files, database="neo4j")
    assert argv[argv.index("full") + 1] == "neo4j"  # before the multi-file options
    assert "--overwrite-destination=true" in argv and "--multiline-fields=true" in argv
    assert f"--relationships=CLICKED={tmp_path / 'rels-CLICKED.csv'}" in argv
