"""Integration fixtures: the real Neo4j, Redis and Celery worker, started by the project's own
service commands (``dpgcn services up``, ``dpgcn worker``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver

from dpgcn import services
from dpgcn.settings import get_settings
from graphstore.driver import connect, delete_all
from tests.integration.helpers import control

DPGCN = str(Path(sys.executable).parent / "dpgcn")


def run_cli(
    *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [DPGCN, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"dpgcn {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="session")
def services_up() -> Iterator[None]:
    run_cli("services", "up", timeout=900)
    yield


@pytest.fixture(scope="session")
def driver(services_up: None) -> Iterator[Driver]:
    conn = services.neo4j_connection(get_settings())
    with connect(conn.uri, conn.user, conn.password) as d:
        yield d


@pytest.fixture
def empty_graph(driver: Driver) -> Driver:
    """The graph with every node removed (schema kept): each test starts from nothing."""
    delete_all(driver)
    return driver


@pytest.fixture(scope="session")
def worker(
    services_up: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``dpgcn worker`` process on both queues (stale messages purged first)."""
    control("purge")
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [DPGCN, "worker", "--queues", "graph,training", "--name", f"test-{os.getpid()}@%h"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while b"ready" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"worker did not start:\n{log.read_text()}")
        time.sleep(0.3)
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def trained_model(driver: Driver, worker: Any) -> Iterator[str]:
    """The SMALL synthetic shop loaded, trained by the real worker and activated; yields the
    model version. Per test module (other modules' ``empty_graph`` wipes the graph); tests that
    change the graph must only touch data they create."""
    from graphstore import ingest
    from graphstore.driver import delete_all
    from graphstore.sources import synthetic
    from tests.integration.helpers import FAST, SMALL, wait_for_run
    from workers import pipeline, runs

    delete_all(driver)
    source, _ = synthetic.generate(SMALL)
    ingest.load_source(driver, source)
    run_id = runs.new_run_id()
    pipeline.submit_pipeline(run_id, FAST)
    record = wait_for_run(run_id)
    assert record["state"] == "SUCCESS", record
    yield run_id
