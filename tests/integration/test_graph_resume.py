"""Resumable ingest: a load interrupted after N batches (injected failure) resumes from its
checkpoint to the same graph as an uninterrupted load, writing fewer batches; and the CREATE
fast path gives the same graph as MERGE."""

from __future__ import annotations

from pathlib import Path

import pytest
from neo4j import Driver

from graphstore import ingest
from graphstore.sources.synthetic import SyntheticSpec, generate
from tests.integration.test_loaders import snapshot

pytestmark = pytest.mark.integration

SPEC = SyntheticSpec(users=80, items=40, events_per_user=6, seed=3)
BATCH = 50


class Interrupted(Exception):
    pass


def test_interrupted_load_resumes(empty_graph: Driver, tmp_path: Path) -> None:
    source, _ = generate(SPEC)
    full = ingest.load_source(empty_graph, source, batch_size=BATCH)
    expected = snapshot(empty_graph)
    assert full.batches > 12

    from graphstore.driver import delete_all

    delete_all(empty_graph)
    checkpoint = tmp_path / "load.checkpoint"
    calls = 0

    def fail_after(part: str, n: int) -> None:  # called after each committed batch
        nonlocal calls
        calls += 1
        if calls == 12:
            raise Interrupted(part)

    with pytest.raises(Interrupted):
        ingest.load_source(
            empty_graph, source, batch_size=BATCH, progress=fail_after, checkpoint=checkpoint
        )
    assert checkpoint.is_file()
    assert snapshot(empty_graph) != expected  # half loaded

    resumed = ingest.load_source(empty_graph, source, batch_size=BATCH, checkpoint=checkpoint)
    assert resumed.skipped_batches == 12
    assert resumed.batches == full.batches - 12
    assert resumed.written == full.written
    # the skipped batches' nodes were not written by this run: their internal ids were
    # looked up by key (ingest/get_node_ids) before their relationships were written
    assert full.looked_up == 0 and resumed.looked_up > 0
    assert snapshot(empty_graph) == expected
    assert not checkpoint.exists()  # removed when the load completes


@pytest.mark.parametrize("pipeline", [True, False])
def test_rows_with_missing_endpoints_are_counted_not_written(
    empty_graph: Driver, pipeline: bool
) -> None:
    source, _ = generate(SPEC)
    clicks = list(source.interactions["CLICKED"])
    ghost = {**clicks[0], "target": "no-such-item"}
    source.interactions["CLICKED"] = [*clicks, ghost]
    summary = ingest.load_source(empty_graph, source, batch_size=BATCH, pipeline=pipeline)
    assert summary.unmatched == {"CLICKED": 1}
    assert summary.looked_up == 1  # the unknown key, looked for once
    n = empty_graph.execute_query("MATCH (:User)-[r:CLICKED]->() RETURN count(r) AS n")
    assert n.records[0]["n"] == len(clicks)


def test_naive_baseline_writes_the_same_relationships(empty_graph: Driver) -> None:
    source, _ = generate(SPEC)
    ingest.load_source(empty_graph, source, batch_size=BATCH)
    expected = snapshot(empty_graph)
    clicks = list(source.interactions["CLICKED"])[:20]
    empty_graph.execute_query("MATCH ()-[r:CLICKED]->() DELETE r")
    assert ingest.write_naive(empty_graph, "CLICKED", clicks) == 20
    again = ingest.write_naive(empty_graph, "CLICKED", clicks)  # MERGE: idempotent
    assert again == 20
    n = empty_graph.execute_query("MATCH ()-[r:CLICKED]->() RETURN count(r) AS n")
    assert n.records[0]["n"] == 20
    ingest.load_source(empty_graph, source, batch_size=BATCH)
    assert snapshot(empty_graph) == expected  # same properties as the batched loader's


def test_changed_source_is_not_skipped(empty_graph: Driver, tmp_path: Path) -> None:
    source, _ = generate(SPEC)
    checkpoint = tmp_path / "load.checkpoint"

    def stop_after_items(part: str, n: int) -> None:
        if part == "items":
            raise Interrupted(part)

    with pytest.raises(Interrupted):  # users (2 batches) and items (1) committed
        ingest.load_source(
            empty_graph, source, batch_size=BATCH, checkpoint=checkpoint, progress=stop_after_items
        )
    source.users = [{**u, "age": 99} for u in source.users]  # same name, other rows
    resumed = ingest.load_source(empty_graph, source, batch_size=BATCH, checkpoint=checkpoint)
    assert resumed.skipped_batches == 1  # only the unchanged items batch
    ages = empty_graph.execute_query("MATCH (u:User) RETURN collect(DISTINCT u.age) AS a")
    assert ages.records[0]["a"] == [99]


def test_create_fast_path_equals_merge(empty_graph: Driver) -> None:
    source, _ = generate(SPEC)
    merged = ingest.load_source(empty_graph, source, batch_size=BATCH, fast_create=False)
    assert merged.created == []
    by_merge = snapshot(empty_graph)

    from graphstore.driver import delete_all

    delete_all(empty_graph)
    created = ingest.load_source(empty_graph, source, batch_size=BATCH)
    assert "CLICKED" in created.created and "item_terms" in created.created
    assert "users" in created.created and "terms" in created.created  # node CREATE path
    assert snapshot(empty_graph) == by_merge
    again = ingest.load_source(empty_graph, source, batch_size=BATCH)  # now MERGE: idempotent
    assert again.created == []
    assert snapshot(empty_graph) == by_merge


def test_concurrent_writers_give_the_same_graph(empty_graph: Driver, tmp_path: Path) -> None:
    source, _ = generate(SPEC)
    serial = ingest.load_source(empty_graph, source, batch_size=20, writers=1)
    expected = snapshot(empty_graph)

    from graphstore.driver import delete_all

    delete_all(empty_graph)
    concurrent = ingest.load_source(empty_graph, source, batch_size=20, writers=3)
    assert "CLICKED" in concurrent.created
    assert concurrent.written == serial.written
    assert concurrent.batches == serial.batches
    assert snapshot(empty_graph) == expected

    # interrupted while batches are in flight: the checkpoint holds only the committed
    # prefix, and the resumed load (MERGE for the part already begun) gives the same graph
    delete_all(empty_graph)
    checkpoint = tmp_path / "load.checkpoint"
    calls = 0

    def fail_in_interactions(part: str, n: int) -> None:
        nonlocal calls
        if part in ("VIEWED", "CLICKED"):
            calls += 1
            if calls == 3:
                raise Interrupted(part)

    with pytest.raises(Interrupted):
        ingest.load_source(
            empty_graph,
            source,
            batch_size=20,
            writers=3,
            progress=fail_in_interactions,
            checkpoint=checkpoint,
        )
    resumed = ingest.load_source(
        empty_graph, source, batch_size=20, writers=3, checkpoint=checkpoint
    )
    assert resumed.skipped_batches > 0
    assert resumed.written == serial.written
    assert snapshot(empty_graph) == expected
    with pytest.raises(ValueError, match="writers"):
        ingest.load_source(empty_graph, source, writers=0)
