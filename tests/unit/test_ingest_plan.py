"""The loader's planner and writer without a server: which batches a resumed load skips,
and the order in which the writer records batches written by concurrent transactions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

import pytest
from neo4j import Driver

from graphstore import ingest_plan, ingest_write
from graphstore.ingest_batches import Checkpoint, NodeIds, digest
from graphstore.ingest_parts import NODE_PARTS, RELATIONSHIP_PARTS, interaction_part

ROWS = [{"id": f"u{i}"} for i in range(25)]


def test_a_resumed_part_skips_its_recorded_prefix_up_to_the_first_change(tmp_path: Path) -> None:
    state = Checkpoint(tmp_path / "c.json", "src", 10)
    state.record("users", 0, digest(ROWS[:10]), 10)
    state.record("users", 1, digest([{"id": "other"}]), 1)
    state.record("users", 2, digest(ROWS[20:]), 5)  # after a changed batch: written again
    prepared: list[int] = []

    def prepare(batch: list[Any]) -> list[Any]:
        prepared.append(len(batch))
        return batch

    batches = list(ingest_plan.plan_batches("users", ROWS, 10, state, prepare))
    assert [(b.index, b.size, b.done) for b in batches] == [
        (0, 10, 10),
        (1, 10, None),
        (2, 5, None),
    ]
    assert batches[0].rows is None and batches[1].rows == ROWS[10:20]
    assert prepared == [10, 5]  # a skipped batch is not prepared (no id look-ups)


def test_without_a_checkpoint_file_every_batch_is_written() -> None:
    state = Checkpoint(None, "src", 10)
    batches = list(ingest_plan.plan_batches("users", ROWS, 10, state, lambda b: b))
    assert [b.done for b in batches] == [None, None, None]
    assert {b.digest for b in batches} == {""}  # no digest taken when nothing resumes


class FakeWriter(ingest_write.Writer):
    """Answers each batch; the first is slow, so with several writers later ones finish
    first."""

    finished: list[str]

    def send(self, job: ingest_plan.Job, rows: list[Any]) -> list[Any]:
        time.sleep(0.2 if rows[0]["id"] == "u0" else 0.0)
        self.finished.append(rows[0]["id"])
        return [{"written": len(rows)}]


@pytest.mark.parametrize("writers", [1, 3])
def test_batches_are_recorded_in_stream_order(tmp_path: Path, writers: int) -> None:
    state = Checkpoint(tmp_path / "c.json", "src", 10)
    seen: list[tuple[str, int]] = []
    no_driver, no_ids = cast(Driver, None), cast(NodeIds, None)  # the fake sends nothing
    writer = FakeWriter(
        no_driver, "neo4j", state, no_ids, writers, progress=lambda p, n: seen.append((p, n))
    )
    writer.finished = []
    job = ingest_plan.Job(
        "CLICKED",
        ingest_plan.plan_batches("CLICKED", ROWS, 10, state, lambda b: b),
        "ingest/create_interactions",
        concurrent=True,
    )
    done = writer.write([job])
    assert done.rows == {"CLICKED": 25} and done.written == {"CLICKED": 25}
    assert done.batches == 3 and done.skipped_batches == 0
    assert seen == [("CLICKED", 10), ("CLICKED", 10), ("CLICKED", 5)]
    assert [n for _, n in state.parts["CLICKED"]] == [10, 10, 5]
    # recorded in stream order even where a later batch committed first
    if writers == 1:
        assert writer.finished == ["u0", "u10", "u20"]
    else:  # u0 committed last; u10 and u20 race each other, in either order
        assert writer.finished[-1] == "u0" and sorted(writer.finished[:2]) == ["u10", "u20"]


def test_part_names() -> None:
    assert NODE_PARTS == ("users", "items", "queries", "terms", "categories")
    assert interaction_part("CLICKED").part in RELATIONSHIP_PARTS
    with pytest.raises(ValueError, match="unknown interaction type"):
        interaction_part("LIKED")
