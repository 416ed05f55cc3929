"""Write-back: the slot vector index carries the HNSW options asked for, the vectors read back
as written, and bad vectors are refused before anything is written."""

from __future__ import annotations

import numpy as np
import pytest
from neo4j import Driver

from graphstore import writeback
from graphstore.driver import execute
from graphstore.errors import VersionError

pytestmark = pytest.mark.integration

N, DIM = 300, 8


@pytest.fixture
def users(empty_graph: Driver) -> list[str]:
    ids = [f"wi{k}" for k in range(N)]
    execute(
        empty_graph,
        "ingest/merge_users",
        {
            "rows": [
                {"id": i, "age": 30, "gender": "M", "occupation": "x", "consent": True} for i in ids
            ]
        },
    )
    return ids


def show_index(driver: Driver, name: str) -> dict[str, object]:
    """The index's options as SHOW INDEXES reports them (read independently of the code)."""
    records = driver.execute_query(
        "SHOW VECTOR INDEXES YIELD name, state, options WHERE name = $name "
        "RETURN state, options.indexConfig AS config",
        name=name,
    ).records
    assert records, f"no index {name}"
    return {"state": records[0]["state"], **records[0]["config"]}


def test_index_options_are_applied_and_changed(empty_graph: Driver, users: list[str]) -> None:
    driver = empty_graph
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    options = writeback.IndexOptions(m=8, ef_construction=40, quantization=True)
    writeback.begin_version(driver, "v-opt1", DIM, "test")
    writeback.write_embeddings(
        driver, "v-opt1", "User", users, vectors, batch_size=70, index_options=options
    )
    slot = writeback.get_model(driver, "v-opt1")["slot"]  # type: ignore[index]
    name = f"user_embedding_{slot}"
    shown = show_index(driver, name)
    assert shown["state"] == "ONLINE"
    assert shown["vector.dimensions"] == DIM
    assert shown["vector.hnsw.m"] == 8
    assert shown["vector.hnsw.ef_construction"] == 40
    assert shown["vector.quantization.enabled"] is True

    # the same slot written again with the writer's defaults: the index is recreated with them
    writeback.begin_version(driver, "v-opt2", DIM, "test")
    assert writeback.get_model(driver, "v-opt2")["slot"] == slot  # type: ignore[index]
    writeback.write_embeddings(driver, "v-opt2", "User", users, vectors, rebuild_index=True)
    shown = show_index(driver, name)
    default = writeback.DEFAULT_INDEX_OPTIONS
    assert shown["state"] == "ONLINE"
    assert shown["vector.hnsw.m"] == default.m
    assert shown["vector.hnsw.ef_construction"] == default.ef_construction
    assert shown["vector.quantization.enabled"] is default.quantization
    assert writeback.get_vector_index(driver, name) == {
        "dim": DIM,
        "m": default.m,
        "ef_construction": default.ef_construction,
        "quantization": default.quantization,
        "state": "ONLINE",
    }
    # and the recreated index holds the vectors: each one finds its own node first
    for k in range(0, N, 50):
        found = execute(
            driver,
            "writeback/get_nearest_nodes",
            {"name": name, "k": 1, "vec": vectors[k].tolist()},
            read=True,
        )
        assert found[0]["id"] == users[k]


def test_vectors_read_back_as_written(empty_graph: Driver, users: list[str]) -> None:
    """Batches sent as 2-D arrays land on the right nodes, in order (float32 precision);
    ids may come as a numpy array of strings (the worker reads them from an .npz file)."""
    driver = empty_graph
    vectors = np.random.default_rng(4).normal(size=(N, DIM)).astype(np.float32)
    writeback.begin_version(driver, "v-rb", DIM, "test")
    n = writeback.write_embeddings(
        driver, "v-rb", "User", np.array(users), vectors, batch_size=64, workers=2
    )
    assert n == N
    slot = writeback.get_model(driver, "v-rb")["slot"]  # type: ignore[index]
    records = driver.execute_query(
        "MATCH (u:User) WHERE u.id STARTS WITH 'wi' "
        f"RETURN u.id AS id, u.embedding_{slot} AS vec, u.embedding_{slot}_version AS version"
    ).records
    got = {r["id"]: (r["vec"], r["version"]) for r in records}
    assert len(got) == N
    for k, uid in enumerate(users):
        vec, version = got[uid]
        assert version == "v-rb"
        np.testing.assert_allclose(np.asarray(vec, dtype=np.float32), vectors[k], rtol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_vectors_are_refused(empty_graph: Driver, users: list[str], bad: float) -> None:
    driver = empty_graph
    vectors = np.ones((N, DIM), dtype=np.float32)
    vectors[N - 1, 3] = bad
    writeback.begin_version(driver, "v-nan", DIM, "test")
    with pytest.raises(VersionError, match="finite"):
        writeback.write_embeddings(driver, "v-nan", "User", users, vectors, batch_size=50)
    slot = writeback.get_model(driver, "v-nan")["slot"]  # type: ignore[index]
    written = driver.execute_query(
        f"MATCH (u:User) WHERE u.embedding_{slot}_version = 'v-nan' RETURN count(u) AS n"
    ).records[0]["n"]
    assert written == 0  # refused before the first batch
