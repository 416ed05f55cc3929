"""The online policy loop against the real Redis stream, Neo4j and Celery worker."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from neo4j import Driver

from dpgcn import streams
from graphstore import policies
from training.inference import load_policy_adjuster_bytes
from training.privacy import policy_without_history
from workers import online, runs


def pending() -> int:
    info = runs.client().xpending(streams.FEEDBACK_STREAM, streams.POLICY_GROUP)
    return int(info["pending"])


def append_clicks(run_id: str, n: int, seed: int) -> list[str]:
    with np.load(runs.run_dir(run_id) / "model" / "embeddings.npz") as z:
        users, items = z["User.ids"].astype(str), z["Item.ids"].astype(str)
    rng = np.random.default_rng(seed)
    ids = []
    for k in range(n):
        kind = ("view", "click", "purchase", "search")[k % 4]
        ids.append(
            streams.append_feedback(
                runs.client(),
                {
                    "event_id": f"e{seed}-{k}",
                    "user_id": str(rng.choice(users)),
                    "type": kind,
                    "item_id": "" if kind == "search" else str(rng.choice(items)),
                    "query": "",
                    "ts": str(1_700_000_000 + k),
                },
            )
        )
    return ids


@pytest.fixture(scope="module")
def clean_stream(services_up: None) -> None:
    runs.client().delete(streams.FEEDBACK_STREAM)


def test_write_back_saves_the_trained_policy_as_version_1(
    driver: Driver, trained_model: str
) -> None:
    first = policies.get_latest_policy(driver, trained_model)
    assert first is not None and first.version == 1
    trained = (runs.run_dir(trained_model) / "model" / "policy.pt").read_bytes()
    # the graph's copy is the trained policy without its per-user history rows
    assert first.actor == policy_without_history(trained) != trained
    stored = torch.load(io.BytesIO(first.actor), weights_only=True)
    assert "user_history" not in stored and "actor" in stored
    assert policies.list_policies(driver, trained_model)[0]["source"] == "offline"


def test_feedback_becomes_a_new_policy_version(
    driver: Driver, trained_model: str, clean_stream: None
) -> None:
    append_clicks(trained_model, 60, seed=1)
    result = online.update_policy.delay().get(timeout=300)
    assert result["model_version"] == trained_model, result
    assert result["entries"] == 60 and result["transitions"] == 45  # searches give none
    assert result["policy_version"] == 2
    latest = policies.get_latest_policy(driver, trained_model)
    assert latest is not None and latest.version == 2
    v1 = load_policy_adjuster_bytes(
        (runs.run_dir(trained_model) / "model" / "policy.pt").read_bytes()
    )
    v2 = load_policy_adjuster_bytes(latest.actor)
    assert v2.version == v1.version + 1
    assert any(
        not np.allclose(a[0], b[0]) for a, b in zip(v1.actor.layers, v2.actor.layers, strict=True)
    )
    assert online.state_path(trained_model).is_file()
    assert pending() == 0
    stats = policies.list_policies(driver, trained_model)[0]
    assert stats["source"] == "online" and stats["transitions"] == 45.0

    again = online.update_policy.delay().get(timeout=300)  # nothing new: no new version
    assert again["entries"] == 0 and "policy_version" not in again
    assert policies.get_latest_policy(driver, trained_model).version == 2  # type: ignore[union-attr]


def test_redelivered_entries_are_not_learned_twice(
    driver: Driver, trained_model: str, clean_stream: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    append_clicks(trained_model, 20, seed=2)

    def crash(*_: object, **__: object) -> int:
        raise RuntimeError("worker died before acknowledging")

    monkeypatch.setattr(streams, "ack_feedback", crash)
    with pytest.raises(RuntimeError):
        online.run_policy_update(driver, runs.client())
    saved = policies.get_latest_policy(driver, trained_model)
    assert saved is not None and saved.version == 3
    assert pending() == 20
    monkeypatch.undo()

    result = online.run_policy_update(driver, runs.client())
    assert result["entries"] == 20 and result["transitions"] == 0.0, result
    assert "policy_version" not in result
    assert policies.get_latest_policy(driver, trained_model).version == 3  # type: ignore[union-attr]
    assert pending() == 0
