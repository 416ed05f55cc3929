"""Faults of the training runs and the event outbox, with real processes on loopback: Redis
stopped and started during training, a worker SIGKILLed with two runs in flight, events posted
while Redis is down. Each test controls its own workers (``only_our_workers``)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver

from dpgcn import services
from dpgcn.settings import get_settings
from tests.integration.conftest import DPGCN
from tests.integration.helpers import control
from tests.integration.test_workers_recovery import (  # noqa: F401
    FAST_RECOVERY,
    active_versions,
    load_small,
    models_of,
    only_our_workers,
    start_worker,
    stop_worker,
    wait_for,
)
from workers import pipeline, runs

logger = logging.getLogger(__name__)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("only_our_workers")]

#: How long Redis stays down: longer than FAST_RECOVERY's heartbeat TTL (4 s), so every
#: heartbeat and lease has expired when it is back.
OUTAGE_S = 12.0


def _mid_training(run_id: str, epoch: int = 2) -> bool:
    r = runs.get(run_id) or {}
    progress = r.get("progress") or {}
    return r.get("step") == "train" and int(progress.get("epoch", 0)) >= epoch


def _heartbeats_of(name: str) -> list[str]:
    """Heartbeat keys of the workers whose Celery node name starts with ``name``."""
    from workers import recovery

    client = runs.client()
    keys = client.keys(recovery.HEARTBEAT_PREFIX + "*")
    return [
        str(k)
        for k in keys
        if str(json.loads(client.get(k) or "{}").get("hostname", "")).startswith(name)
    ]


def _ensure_redis() -> None:
    services.start_service(get_settings(), "redis")


def test_redis_outage_during_training_delays_the_run_only(driver: Driver, tmp_path: Path) -> None:
    settings = get_settings()
    load_small(driver)
    log = tmp_path / "w.log"
    worker = start_worker("blip", "graph,training", log, FAST_RECOVERY)
    follower: subprocess.Popen[str] | None = None
    try:
        before = set(runs.run_ids(1000))
        follower = subprocess.Popen(
            [DPGCN, "train", "--epochs", "40", "--dim", "16", "--wait", "--timeout", "400"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **FAST_RECOVERY},
        )
        run_id = wait_for(lambda: next(iter(set(runs.run_ids(1000)) - before), None), 60, "the run")
        wait_for(lambda: _mid_training(run_id), 300, "the run to be mid-training")
        assert services.stop_service(settings, "redis")
        time.sleep(OUTAGE_S)
        services.start_service(settings, "redis")
        out, _ = follower.communicate(timeout=400)
        assert follower.returncode == 0, out
        assert "Traceback" not in out, out
        record = runs.get(run_id) or {}
        assert record["state"] == "SUCCESS", record
        # the same attempt finished: nothing was resumed or run twice
        assert record["attempt"] == 0 and not record.get("recoveries"), record
        assert [m["version"] for m in models_of(driver, run_id)] == [run_id]
        assert active_versions(driver) == [run_id]
        text = log.read_text()
        assert "progress not recorded" in text, "the outage never hit a progress write"
        assert text.count("Task workers.pipeline.train_model[") >= 1
        assert "Traceback" not in text.split("progress not recorded", 1)[0]
    finally:
        _ensure_redis()
        if follower is not None and follower.poll() is None:
            follower.kill()
            follower.wait(10)
        stop_worker(worker)


def _start_pool_worker(name: str, log: Path, concurrency: int) -> subprocess.Popen[bytes]:
    """A worker running ``concurrency`` tasks at once (prefork pool children)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(DPGCN, "worker", "--queues", "graph,training", "--pool", "prefork"),
                *("--concurrency", str(concurrency), "--name", f"{name}-{os.getpid()}@%h"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **FAST_RECOVERY},
        )
    wait_for(lambda: b"ready" in log.read_bytes() or proc.poll() is not None, 90, name)
    assert proc.poll() is None, log.read_text()
    return proc


def _model_records(driver: Driver, versions: list[str]) -> dict[str, dict[str, Any]]:
    records = driver.execute_query(
        "MATCH (m:Model) WHERE m.version IN $v RETURN m {.*} AS m", v=versions
    ).records
    return {r["m"]["version"]: dict(r["m"]) for r in records}


def test_two_runs_in_flight_on_a_killed_worker_never_share_a_slot(
    driver: Driver, tmp_path: Path
) -> None:
    load_small(driver)
    first = _start_pool_worker("pair-a", tmp_path / "a.log", concurrency=2)
    second: subprocess.Popen[bytes] | None = None
    try:
        ids = [runs.new_run_id() + f"{n}" for n in range(2)]
        for run_id in ids:
            pipeline.submit_pipeline(
                run_id,
                {
                    "model.name": "dpgcn",
                    "optim.epochs": 150,
                    "model.dim": 16,
                    "optim.batch_size": 64,
                },
            )
        wait_for(lambda: all(_mid_training(r, 1) for r in ids), 300, "both runs training")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        owners = {r: (runs.get(r) or {}).get("owner") for r in ids}
        assert all(owners.values()), owners

        second = start_worker("pair-b", "graph,training", tmp_path / "b.log", FAST_RECOVERY)
        records = {r: wait_for_final(r) for r in ids}
        states = sorted(rec["state"] for rec in records.values())
        assert states == ["SUCCESS", "SUCCESS"], records
        assert all(rec["recoveries"] == 1 for rec in records.values()), records
        models = _model_records(driver, ids)
        assert sorted(models) == sorted(ids)
        # never two writers on one slot: both versions complete, in different slots, and
        # the one activated last is the active one
        assert {m["status"] for m in models.values()} == {"complete"}, models
        assert len({m["slot"] for m in models.values()}) == 2, models
        last = max(ids, key=lambda r: records[r]["activate_finished_at"])
        assert active_versions(driver) == [last]
        # the later write-back waited for the other run's activation
        first_done = min(ids, key=lambda r: records[r]["activate_finished_at"])
        assert records[last]["write_back_started_at"] >= records[first_done]["activate_finished_at"]
        assert runs.slot_holder() is None
    finally:
        stop_worker(first, signal.SIGKILL)
        if second is not None:
            stop_worker(second)


def wait_for_final(run_id: str, timeout: float = 600) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (lambda r: r if r.get("state") in ("SUCCESS", "FAILURE") else None)(
                runs.get(run_id) or {}
            ),
            timeout,
            f"run {run_id} to finish",
        )
    )


def _stream_ids(user: str) -> list[str]:
    from dpgcn.streams import FEEDBACK_STREAM

    entries = runs.client().xrange(FEEDBACK_STREAM)
    return [f["event_id"] for _, f in entries if f.get("user_id") == user]


def test_events_posted_while_redis_is_down_reach_the_stream_without_retries(
    driver: Driver, tmp_path: Path
) -> None:
    import uuid

    from fastapi.testclient import TestClient

    from api.main import create_app
    from tests.integration.api_keys import auth, create_keys

    settings = get_settings()
    load_small(driver)
    keys = create_keys(driver)
    worker = start_worker("outbox", "graph,training", tmp_path / "w.log", FAST_RECOVERY)
    user, prefix = f"ob-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    now = time.time()
    batch = {
        "events": [
            {"id": f"{prefix}-{n}", "user_id": user, "type": kind, "item_id": "i3", "ts": now + n}
            for n, kind in enumerate(("view", "click", "purchase", "view"))
        ]
    }
    try:
        with TestClient(create_app()) as api:
            assert services.stop_service(settings, "redis")
            started = time.monotonic()
            r = api.post("/v1/events", json=batch, headers=auth(keys["write"]))
            took = time.monotonic() - started
            assert r.status_code == 200, r.text
            assert r.json() == {"accepted": 4, "duplicates": 0, "rejected": [], "streamed": 0}
            assert took < 15, took
            stored = driver.execute_query(
                "MATCH (e:Event {user_id: $u}) RETURN e.streamed AS s", u=user
            ).records
            assert [rec["s"] for rec in stored] == [False] * 4
            services.start_service(settings, "redis")
            back = time.monotonic()
            # no client retry: a worker drains the outbox once Redis is back
            wait_for(lambda: len(_stream_ids(user)) == 4, 60, "the outbox drain")
            logger.info(
                "answer during the outage in %.2fs; streamed %.1fs after Redis was back",
                took,
                time.monotonic() - back,
            )
            assert sorted(_stream_ids(user)) == sorted(e["id"] for e in batch["events"])

            # the drain appends, then marks: the marks follow the stream entries shortly
            def marked() -> bool:
                records = driver.execute_query(
                    "MATCH (e:Event {user_id: $u}) RETURN e.streamed AS s", u=user
                ).records
                return [rec["s"] for rec in records] == [True] * 4

            wait_for(marked, 30, "the outbox marking the events streamed")
            # a retried batch after the drain changes nothing and appends nothing
            again = api.post("/v1/events", json=batch, headers=auth(keys["write"])).json()
            assert again["duplicates"] == 4 and again["streamed"] == 0
            time.sleep(3)
            assert len(_stream_ids(user)) == 4
    finally:
        _ensure_redis()
        stop_worker(worker)


def test_run_whose_task_died_under_a_live_worker_is_resumed(driver: Driver, tmp_path: Path) -> None:
    """What a task that died without recording its failure (the errback could not reach
    Redis) leaves behind: the step owned by a worker that still beats, and no lease."""
    from workers import recovery

    load_small(driver)
    worker = start_worker("stranded", "graph,training", tmp_path / "w.log", FAST_RECOVERY)
    try:
        # the session's shared worker (consumers paused by only_our_workers) beats too: find
        # this test's worker by the node name in its heartbeat
        beating = wait_for(lambda: _heartbeats_of("stranded-"), 30, "the worker's heartbeat")
        assert len(beating) == 1, beating
        worker_id = beating[0].removeprefix(recovery.HEARTBEAT_PREFIX)
        run_id = runs.new_run_id()
        runs.create(run_id, {"model.name": "dpgcn", "optim.epochs": 2, "model.dim": 16})
        assert runs.claim(run_id, "train", 0, worker_id, "stranded") == "claimed"
        runs.update(run_id, state="RUNNING", step="train")
        runs.client().delete(runs.lease_key(run_id))
        control("purge")
        record = wait_for_final(run_id, 300)
        assert record["state"] == "SUCCESS", record
        assert record["attempt"] == 1 and record["recoveries"] == 1, record
        assert record["recovered_because"] == "task gone", record
        assert [m["version"] for m in models_of(driver, run_id)] == [run_id]
    finally:
        stop_worker(worker)
