"""The Celery app's configuration and the pure helpers of the worker modules (no services)."""

from __future__ import annotations

import pytest

from dpgcn import streams
from workers import app as app_module
from workers import online
from workers.app import GRAPH_QUEUE, TRAINING_QUEUE, app


def test_routes_send_training_to_the_training_queue_only() -> None:
    router = app.amqp.router
    assert router.route({}, "workers.pipeline.train_model")["queue"].name == TRAINING_QUEUE
    for name in (
        "workers.pipeline.export_graph",
        "workers.pipeline.write_back",
        "workers.pipeline.activate",
        "workers.online.update_policy",
    ):
        assert router.route({}, name)["queue"].name == GRAPH_QUEUE, name


def test_reliability_settings() -> None:
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] >= conf.task_time_limit
    assert {"workers.pipeline", "workers.recovery", "workers.online"} <= set(conf.include)


def test_beat_schedule_has_retraining_and_policy_updates() -> None:
    schedule = app_module._schedule(3600.0, 120.0)
    assert schedule["retrain"]["task"] == "workers.pipeline.start_pipeline"
    assert schedule["policy-update"]["task"] == "workers.online.update_policy"
    assert schedule["policy-update"]["schedule"] == 120.0
    assert "policy-update" not in app_module._schedule(3600.0, 0.0)


def test_beat_schedule_scrubs_erased_users_from_artifacts() -> None:
    schedule = app_module._schedule(3600.0, 120.0, 60.0)
    assert schedule["privacy-scrub"]["task"] == "workers.privacy.scrub_erased_artifacts"
    assert schedule["privacy-scrub"]["schedule"] == 60.0
    assert "workers.privacy" in app.conf.include
    import workers.privacy  # noqa: F401  (what a worker does with conf.include)

    assert "workers.privacy.scrub_erased_artifacts" in app.tasks
    assert "privacy-scrub" not in app_module._schedule(3600.0, 120.0, 0.0)


def test_stream_entry_ids_sort_numerically() -> None:
    ids = ["1700000000000-10", "1700000000000-9", "999-0", "1700000000001-0"]
    assert sorted(ids, key=streams.entry_key) == [
        "999-0",
        "1700000000000-9",
        "1700000000000-10",
        "1700000000001-0",
    ]


def test_append_feedback_refuses_entries_without_the_documented_fields() -> None:
    with pytest.raises(ValueError, match="lacks"):
        streams.append_feedback(object(), {"user_id": "u1", "type": "click"})


def test_malformed_entries_are_dropped() -> None:
    entries = [
        ("1-0", {"user_id": "u1", "type": "click", "item_id": "i1", "ts": "5", "event_id": "a"}),
        ("2-0", {"user_id": "u1", "type": "click", "item_id": "i1", "ts": "soon"}),
        ("3-0", {"type": "view", "item_id": "i2", "ts": "6"}),
    ]
    events = online.events_from_entries(entries)
    assert [(e.user_id, e.type, e.item_id, e.ts, e.event_id) for e in events] == [
        ("u1", "click", "i1", 5.0, "a")
    ]


class FakeLearner:
    def __init__(self) -> None:
        self.meta: dict[str, str] = {"last_id": "2-0"}
        self.seen: list[str] = []

    def update(self, events: list[object], passes: int) -> dict[str, float]:
        self.seen += [e.event_id for e in events]  # type: ignore[attr-defined]
        return {"transitions": float(len(events))}


def test_learn_from_entries_skips_what_was_learned_already() -> None:
    learner = FakeLearner()
    entries = [
        (
            f"{k}-0",
            {"user_id": "u", "type": "click", "item_id": "i", "ts": str(k), "event_id": f"e{k}"},
        )
        for k in range(1, 5)
    ]
    stats = online.learn_from_entries(learner, entries, passes=1)
    assert learner.seen == ["e3", "e4"] and stats["transitions"] == 2.0
    assert learner.meta == {"last_id": "4-0", "trained_id": "4-0"}
    assert online.learn_from_entries(learner, entries, passes=1) == {"transitions": 0.0}
    assert learner.seen == ["e3", "e4"]


def test_progress_report_without_redis_warns_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import time

    from workers.runs import RunRegistry

    registry = RunRegistry.for_worker("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        started = time.monotonic()
        assert registry.report_progress("v-test", {"epoch": 1}) is False
        assert registry.report_progress("v-test", {"epoch": 2}) is False  # backed off: no try
        assert time.monotonic() - started < 5
        assert sum("progress not recorded" in r.getMessage() for r in caplog.records) == 1
    finally:
        registry.close()


def test_outbox_entries_have_the_stream_fields_in_order() -> None:
    entry = streams.feedback_entry("e1", "u1", "click", None, "game race", 1700000000.5)
    assert tuple(entry) == streams.FEEDBACK_FIELDS
    assert entry["item_id"] == "" and entry["ts"] == "1700000000.5"
