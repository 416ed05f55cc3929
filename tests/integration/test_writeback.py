"""Write-back versions: a reader never mixes two versions, even during a write."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from neo4j import Driver

from graphstore import serving, writeback
from graphstore.driver import execute
from graphstore.errors import VersionError

pytestmark = pytest.mark.integration

N, DIM = 400, 8


@pytest.fixture
def users(empty_graph: Driver) -> list[str]:
    ids = [f"wb{k}" for k in range(N)]
    execute(
        empty_graph,
        "ingest/merge_users",
        {
            "rows": [
                {"id": i, "age": 20, "gender": "F", "occupation": "x", "consent": True} for i in ids
            ]
        },
    )
    return ids


def publish(
    driver: Driver,
    version: str,
    ids: list[str],
    vectors: np.ndarray,
    rebuild_index: bool = False,
) -> None:
    writeback.begin_version(driver, version, DIM, "test")
    n = writeback.write_embeddings(
        driver, version, "User", ids, vectors, batch_size=50, rebuild_index=rebuild_index
    )
    assert n == len(ids)
    writeback.complete_version(driver, version, {"User": n}, {})


def index_state(driver: Driver, name: str) -> str | None:
    records = driver.execute_query(
        "SHOW INDEXES YIELD name, state WHERE name = $name RETURN state", name=name
    ).records
    return str(records[0]["state"]) if records else None


@pytest.mark.parametrize("rebuild_index", [False, True])
def test_reader_sees_old_or_new_never_a_mix(
    empty_graph: Driver, users: list[str], rebuild_index: bool
) -> None:
    """Also while the written slot's vector index is dropped and rebuilt (``rebuild_index``):
    readers of the active version use the other slot."""
    driver = empty_graph
    old = np.full((N, DIM), 1.0, dtype=np.float32)
    new = np.full((N, DIM), 2.0, dtype=np.float32)
    publish(driver, "v-old", users, old)
    writeback.activate_version(driver, "v-old")

    seen: list[set[float]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            active = writeback.get_active(driver)
            assert active is not None
            values = set()
            for uid in users[::37]:
                state = serving.get_user_state(driver, uid, active)
                if state.vector is not None:
                    values.add(float(state.vector[0]))
            seen.append(values)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        publish(driver, "v-new", users, new, rebuild_index)
        assert writeback.get_active(driver).version == "v-old"  # type: ignore[union-attr]
        writeback.activate_version(driver, "v-new")
        for _ in range(20):
            if any(v == {2.0} for v in seen):
                break
            threading.Event().wait(0.05)
    finally:
        stop.set()
        reader.join()
    assert seen and all(v in ({1.0}, {2.0}) for v in seen), seen
    assert seen[0] == {1.0} and seen[-1] == {2.0}


def test_versions_alternate_slots_and_rollback(empty_graph: Driver, users: list[str]) -> None:
    driver = empty_graph
    ones = np.ones((N, DIM), dtype=np.float32)
    publish(driver, "v1", users, ones)
    a = writeback.activate_version(driver, "v1")
    publish(driver, "v2", users, ones * 2)
    b = writeback.activate_version(driver, "v2")
    assert {a.slot, b.slot} == {"a", "b"}
    assert writeback.activate_version(driver, "v1").version == "v1"  # rollback
    publish(driver, "v3", users, ones * 3)  # rewrites v2's slot: v2 can't come back
    with pytest.raises(VersionError, match="superseded"):
        writeback.activate_version(driver, "v2")


def test_incomplete_version_cannot_be_activated(empty_graph: Driver, users: list[str]) -> None:
    writeback.begin_version(empty_graph, "v-half", DIM, "test")
    writeback.write_embeddings(
        empty_graph, "v-half", "User", users[:10], np.ones((10, DIM), dtype=np.float32)
    )
    with pytest.raises(VersionError, match="writing"):
        writeback.activate_version(empty_graph, "v-half")


def test_wrong_shape_is_refused(empty_graph: Driver, users: list[str]) -> None:
    writeback.begin_version(empty_graph, "v-bad", DIM, "test")
    with pytest.raises(VersionError, match="shape"):
        writeback.write_embeddings(
            empty_graph, "v-bad", "User", users[:5], np.ones((5, DIM + 1), dtype=np.float32)
        )


def test_rebuilt_index_is_online_and_finds_the_new_vectors(
    empty_graph: Driver, users: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk write drops the slot's vector index and returns only once the rebuilt index is
    ONLINE and answers nearest-neighbour queries over the vectors just written."""
    driver = empty_graph
    rng = np.random.default_rng(1)
    first = rng.normal(size=(N, DIM)).astype(np.float32)
    publish(driver, "v-a", users, first)
    writeback.activate_version(driver, "v-a")
    publish(driver, "v-b", users, first)  # fills slot b's index
    writeback.activate_version(driver, "v-a")
    assert writeback.get_model(driver, "v-b")["slot"] == "b"  # type: ignore[index]
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    writeback.begin_version(driver, "v-c", DIM, "test")  # rewrites slot b
    seen: list[str | None] = []
    original = writeback.execute

    def spy(drv: Driver, name: str, *args: object, **kwargs: object) -> list[object]:
        if name == "writeback/set_embeddings":
            seen.append(index_state(drv, "user_embedding_b"))
        return original(drv, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writeback, "execute", spy)
    n = writeback.write_embeddings(
        driver, "v-c", "User", users, vectors, batch_size=100, rebuild_index=True
    )
    monkeypatch.undo()
    assert n == N
    assert seen and all(state is None for state in seen)  # no index during the write
    assert index_state(driver, "user_embedding_b") == "ONLINE"
    hits = 0
    for k in range(0, N, 40):
        found = execute(
            driver,
            "writeback/get_nearest_nodes",
            {"name": "user_embedding_b", "k": 3, "vec": vectors[k].tolist()},
            read=True,
        )
        hits += found[0]["id"] == users[k]
    assert hits >= 9  # 10 queries: each vector's own node is its nearest neighbour
