"""Crash recovery with real workers: a worker SIGKILLed mid-training, a new worker resumes the
run; the original message, redelivered later, does nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver

from graphstore import ingest
from graphstore.sources import synthetic
from tests.integration.conftest import DPGCN
from tests.integration.helpers import SMALL, control, wait_for_run
from workers import pipeline, runs

#: Quick heartbeats so that a dead worker is noticed within seconds.
FAST_RECOVERY = {
    "DPGCN_WORKER_HEARTBEAT_S": "1",
    "DPGCN_WORKER_HEARTBEAT_TTL_S": "4",
    "DPGCN_RECOVER_EVERY_S": "2",
}


def start_worker(
    name: str, queues: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A real ``dpgcn worker`` in its own process group; returns once it is ready."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [DPGCN, "worker", "--queues", queues, "--name", f"{name}-{os.getpid()}@%h"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    deadline = time.monotonic() + 90
    while b"ready" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_worker(proc)
            raise AssertionError(f"worker {name} did not start:\n{log.read_text()}")
        time.sleep(0.3)
    return proc


def stop_worker(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def only_our_workers(services_up: None) -> Iterator[None]:
    """Other workers of the session (the shared ``worker`` fixture) stop consuming the
    pipeline queues while this module runs, so that each test controls who runs what."""
    from workers.app import GRAPH_QUEUE, TRAINING_QUEUE

    paused = []
    for queue in (GRAPH_QUEUE, TRAINING_QUEUE):
        replies = control("cancel_consumer", queue, reply=True, timeout=2.0) or []
        paused += [(queue, name) for reply in replies for name in reply]
    control("purge")
    yield
    # Give every queue back, until the worker answers: a broadcast sent while its broker
    # connection is being re-established (the outage tests restart Redis) gets no reply and
    # is lost, and a worker left without the training queue stalls every later run.
    for queue, name in paused:
        for _ in range(30):
            with contextlib.suppress(Exception):
                if control("add_consumer", queue, destination=[name], reply=True, timeout=2.0):
                    break
            time.sleep(1.0)
        else:
            raise AssertionError(f"worker {name} did not take queue {queue!r} back")


def load_small(driver: Driver) -> None:
    from graphstore.driver import delete_all

    delete_all(driver)
    source, _ = synthetic.generate(SMALL)
    ingest.load_source(driver, source)


def models_of(driver: Driver, run_id: str) -> list[dict[str, Any]]:
    records = driver.execute_query(
        "MATCH (m:Model) WHERE m.version = $v OR m.run_id = $v RETURN m {.*} AS m", v=run_id
    ).records
    return [dict(r["m"]) for r in records]


def active_versions(driver: Driver) -> list[str]:
    records = driver.execute_query("MATCH (m:Model {active: true}) RETURN m.version AS v").records
    return [r["v"] for r in records]


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def redeliver_unacked() -> int:
    """What Redis does once the visibility timeout has passed: every unacknowledged message
    goes back to its queue (kombu's own ``restore_visible``, with a zero timeout)."""
    from workers.app import app

    with app.connection_for_write() as conn:
        channel: Any = conn.default_channel
        client = channel.client
        waiting = int(client.hlen(channel.unacked_key))
        channel.visibility_timeout = 0
        channel.qos.restore_visible(num=100)
        return waiting


def test_killed_worker_run_is_resumed_once(
    driver: Driver, only_our_workers: None, tmp_path: Path
) -> None:
    load_small(driver)
    first = start_worker("crash-a", "graph,training", tmp_path / "a.log", FAST_RECOVERY)
    second: subprocess.Popen[bytes] | None = None
    try:
        run_id = runs.new_run_id()
        pipeline.submit_pipeline(
            run_id,
            {"model.name": "dpgcn", "optim.epochs": 25, "model.dim": 16, "optim.batch_size": 16},
        )

        def mid_training() -> bool:
            r = runs.get(run_id) or {}
            progress = r.get("progress") or {}
            return r.get("step") == "train" and int(progress.get("epoch", 0)) >= 2

        wait_for(mid_training, 300, "the run to be mid-training")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        killed = runs.get(run_id) or {}
        assert killed["state"] == "RUNNING" and killed["owner_step"] == "train", killed
        assert killed["owner"], killed
        assert not (runs.run_dir(run_id) / "model" / "metrics.json").exists()

        second = start_worker("crash-b", "graph,training", tmp_path / "b.log", FAST_RECOVERY)
        record = wait_for_run(run_id, timeout=600)
        assert record["state"] == "SUCCESS", record
        assert record["attempt"] == 1 and record["recoveries"] == 1, record
        assert record["recovered_from"] == f"train@{killed['owner']}"
        assert "crash-b" in record["train_worker"] and "crash-b" in record["activate_worker"]
        assert [m["version"] for m in models_of(driver, run_id)] == [run_id]
        assert active_versions(driver) == [run_id]

        # The killed worker's message, redelivered after the visibility timeout, is a no-op.
        assert redeliver_unacked() >= 1
        log_b = tmp_path / "b.log"
        wait_for(
            lambda: b"delivery of step activate (attempt 0) ignored" in log_b.read_bytes(),
            120,
            "the redelivered chain to reach activate",
        )
        text = log_b.read_text()
        for step in ("train", "write_back", "activate"):
            assert f"finished delivery of step {step} (attempt 0) ignored" in text, step
        assert runs.client().llen("graph") == runs.client().llen("training") == 0
        after = runs.get(run_id) or {}
        for key in ("state", "attempt", "train_finished_at", "activate_finished_at"):
            assert after[key] == record[key], key
        assert len(models_of(driver, run_id)) == 1
        assert active_versions(driver) == [run_id]
    finally:
        stop_worker(first, signal.SIGKILL)
        if second is not None:
            stop_worker(second)


def test_neo4j_outage_is_retried_until_it_is_back(
    driver: Driver, only_our_workers: None, tmp_path: Path
) -> None:
    from dpgcn import neo4j_server, services
    from dpgcn.settings import get_settings

    settings = get_settings()
    load_small(driver)
    proc = start_worker("outage", "graph,training", tmp_path / "w.log")
    try:
        assert neo4j_server.stop(services.neo4j_spec(settings))
        run_id = runs.new_run_id()
        pipeline.submit_pipeline(
            run_id, {"model.name": "dpgcn", "optim.epochs": 2, "model.dim": 16}
        )
        wait_for(lambda: (runs.get(run_id) or {}).get("retries", 0) >= 2, 180, "two retries")
        down = runs.get(run_id) or {}
        assert down["state"] == "RETRYING" and "unavailable" in down["last_error"].lower(), down
        services.up(settings)
        record = wait_for_run(run_id, timeout=600)
        assert record["state"] == "SUCCESS", record
        assert record["retries"] >= 2
        assert [m["version"] for m in models_of(driver, run_id)] == [run_id]
        assert active_versions(driver) == [run_id]
    finally:
        services.up(settings)
        stop_worker(proc)


def test_graph_and_training_workers_share_the_pipeline(
    driver: Driver, only_our_workers: None, tmp_path: Path
) -> None:
    load_small(driver)
    graph = start_worker("graph-w", "graph", tmp_path / "graph.log")
    training = start_worker("train-w", "training", tmp_path / "train.log")
    try:
        run_id = runs.new_run_id()
        pipeline.submit_pipeline(
            run_id, {"model.name": "dpgcn", "optim.epochs": 2, "model.dim": 16}
        )
        record = wait_for_run(run_id, timeout=600)
        assert record["state"] == "SUCCESS", record
        assert "graph-w" in record["export_worker"]
        assert "train-w" in record["train_worker"]
        assert "graph-w" in record["write_back_worker"]
        assert "graph-w" in record["activate_worker"]
        assert "Task workers.pipeline.train_model[" not in (tmp_path / "graph.log").read_text()
        assert "Task workers.pipeline.export_graph[" not in (tmp_path / "train.log").read_text()
        assert active_versions(driver) == [run_id]
    finally:
        stop_worker(graph)
        stop_worker(training)
