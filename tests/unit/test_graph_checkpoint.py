"""The load checkpoint: committed batches are recognised by content, a changed batch
invalidates what followed it, and an unrelated load's file is ignored."""

from __future__ import annotations

from pathlib import Path

from graphstore.ingest import Checkpoint, digest


def test_digest_is_stable_and_content_sensitive() -> None:
    a = [{"id": "u1", "age": 3}, {"id": "u2", "age": None}]
    assert digest(a) == digest([{"age": 3, "id": "u1"}, {"age": None, "id": "u2"}])
    assert digest(a) != digest([{"id": "u1", "age": 4}, {"id": "u2", "age": None}])


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    first = Checkpoint(path, "src", 10)
    first.record("users", 0, "d0", 10)
    first.record("users", 1, "d1", 9)
    again = Checkpoint(path, "src", 10)
    assert again.done("users", 0, "d0") == 10 and again.done("users", 1, "d1") == 9
    assert again.done("users", 1, "changed") is None
    assert again.done("users", 2, "d2") is None and again.done("items", 0, "d0") is None
    again.record("users", 1, "changed", 7)  # rewrites batch 1 and forgets what followed
    assert Checkpoint(path, "src", 10).parts["users"] == [["d0", 10], ["changed", 7]]
    assert Checkpoint(path, "src", 20).parts == {}  # other batch size: other load
    assert Checkpoint(path, "other", 10).parts == {}
    again.finish()
    assert not path.exists()


def test_no_file_no_checkpoint(tmp_path: Path) -> None:
    state = Checkpoint(None, "src", 10)
    state.record("users", 0, "d0", 10)
    assert state.done("users", 0, "d0") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert Checkpoint(tmp_path / "bad.json", "src", 10).parts == {}
