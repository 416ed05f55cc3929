"""The run registry over a Redis client handed in (a stand-in here: no services)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from workers import runs
from workers.runs import RunRegistry


class FakeRedis:
    """The few commands the registry's reads and plain writes use, on dicts."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.zsets: dict[str, dict[str, float]] = {}
        self.closed = 0

    def hset(self, key: str, mapping: dict[str, Any]) -> int:
        self.hashes.setdefault(key, {}).update({k: str(v) for k, v in mapping.items()})
        return len(mapping)

    def hgetall(self, key: str) -> dict[str, str]:
        return dict(self.hashes.get(key, {}))

    def hincrby(self, key: str, field: str, by: int) -> int:
        value = int(self.hashes.setdefault(key, {}).get(field, "0")) + by
        self.hashes[key][field] = str(value)
        return value

    def zadd(self, key: str, mapping: dict[str, float]) -> int:
        self.zsets.setdefault(key, {}).update(mapping)
        return len(mapping)

    def zrevrange(self, key: str, start: int, end: int) -> list[str]:
        ordered = sorted(self.zsets.get(key, {}), key=self.zsets[key].__getitem__, reverse=True)
        return ordered[start : end + 1]

    def pipeline(self) -> FakeRedis:
        return self

    def execute(self) -> list[Any]:
        return []

    def close(self) -> None:
        self.closed += 1


def test_records_are_written_and_read_back_typed() -> None:
    client = FakeRedis()
    registry = RunRegistry(client)  # type: ignore[arg-type]
    registry.create("v1", {"model": "dpgcn", "epochs": 2})
    registry.step_started("v1", "train")
    registry.update("v1", metrics={"val_auc": 0.9})
    assert registry.increment("v1", "retries") == 1
    record = registry.get("v1")
    assert record is not None
    assert record["config"] == {"model": "dpgcn", "epochs": 2}
    assert record["metrics"] == {"val_auc": 0.9}
    assert record["state"] == "RUNNING" and record["step"] == "train"
    assert record["attempt"] == 0 and record["retries"] == 1
    assert isinstance(record["train_started_at"], float)
    assert registry.get("v-unknown") is None
    assert json.loads(client.hashes[runs.run_key("v1")]["config"])["epochs"] == 2


def test_runs_are_listed_newest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = RunRegistry(FakeRedis())  # type: ignore[arg-type]
    clock = iter([100.0, 200.0, 300.0])
    monkeypatch.setattr(runs.time, "time", lambda: next(clock))
    for run_id in ("v1", "v2", "v3"):
        registry.create(run_id, {})
    assert registry.run_ids() == ["v3", "v2", "v1"]
    assert [r["run_id"] for r in registry.list_runs(2)] == ["v3", "v2"]


def test_reads_go_to_the_reader_and_writes_to_the_client() -> None:
    writer, reader = FakeRedis(), FakeRedis()
    registry = RunRegistry(writer, reader=reader)  # type: ignore[arg-type]
    registry.create("v1", {})
    assert registry.get("v1") is None  # the reader holds nothing
    assert registry.get("v1", patient=True) is not None  # a patient read asks the writer
    registry.close()
    assert (writer.closed, reader.closed) == (1, 1)


def test_one_client_is_closed_once() -> None:
    client = FakeRedis()
    RunRegistry(client).close()  # type: ignore[arg-type]
    assert client.closed == 1


def test_run_ids_are_checked_before_they_become_paths() -> None:
    assert runs.run_dir("v20261126-233000-1a2b3c").name == "v20261126-233000-1a2b3c"
    for bad in ("../x", "v1/..", "v 1", ""):
        with pytest.raises(ValueError, match="bad run id"):
            runs.run_dir(bad)
