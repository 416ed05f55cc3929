"""The online policy loop: feedback stream → DDPG updates → a new ``(:Policy)`` version.

Beat runs :func:`update_policy` every ``DPGCN_POLICY_UPDATE_EVERY_S``. It reads the feedback
the API appended to ``dpgcn.streams.FEEDBACK_STREAM`` through a consumer group (at-least-once),
updates the active model version's policy with :class:`training.online.OnlineLearner` (the
full DDPG state — critic, targets, optimisers, replay buffer, users' recent items — is kept in
``<artifacts>/runs/<version>/online/state.pt``), saves a new policy version in the graph and
only then acknowledges the entries. Serving picks the newest version up without a restart.

Idempotent: the state file records the last entry it learned from (``last_id``) and each saved
policy version the entry it includes (``last_stream_id``). Entries redelivered after a crash are
skipped when already learned from, and a policy learned but not yet saved is saved again.
One update runs at a time (a Redis lock).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neo4j import Driver

from dpgcn import streams
from graphstore import policies, writeback
from workers import context, runs
from workers.app import app

logger = logging.getLogger(__name__)

LOCK_KEY = "dpgcn:lock:policy-update"
CONSUMER = "policy-updater"
LOCK_TTL_S = 900


def state_path(model_version: str) -> Path:
    return runs.run_dir(model_version) / "online" / "state.pt"


def events_from_entries(entries: Sequence[streams.Entry]) -> list[Any]:
    """Stream entries → :class:`training.online.FeedbackEvent` (malformed entries are logged
    and dropped: bad data must not block the loop)."""
    from training.online import FeedbackEvent

    out = []
    for entry_id, fields in entries:
        try:
            out.append(
                FeedbackEvent(
                    user_id=fields["user_id"],
                    type=fields["type"],
                    item_id=fields.get("item_id", ""),
                    ts=float(fields["ts"]),
                    event_id=fields.get("event_id", entry_id),
                )
            )
        except (KeyError, ValueError) as e:
            logger.warning("feedback entry %s is malformed (%s); skipped", entry_id, e)
    return out


def learn_from_entries(
    learner: Any, entries: Sequence[streams.Entry], passes: int
) -> dict[str, float]:
    """Update ``learner`` from entries newer than the last one it learned from; records that
    entry in ``learner.meta["last_id"]``. The code path the drift benchmark runs too."""
    last = learner.meta.get("last_id", "0-0")
    fresh = [e for e in entries if streams.entry_key(e[0]) > streams.entry_key(last)]
    if not fresh:
        return {"transitions": 0.0}
    stats: dict[str, float] = learner.update(events_from_entries(fresh), passes=passes)
    learner.meta["last_id"] = fresh[-1][0]
    if stats.get("transitions", 0.0) > 0:
        learner.meta["trained_id"] = fresh[-1][0]
    return stats


def run_policy_update(
    driver: Driver,
    client: Any,
    database: str = "neo4j",
    max_events: int = 20_000,
    passes: int = 4,
) -> dict[str, Any]:
    """One round of the online loop (no Celery: the task below and tests call it)."""
    from training.online import OnlineLearner
    from training.privacy import policy_without_history

    active = writeback.get_active(driver, database)
    streams.ensure_group(client)
    entries = streams.read_feedback(client, CONSUMER, max_events)
    ids = [i for i, _ in entries]
    if active is None:
        return {"skipped": "no active model", "entries": len(entries)}
    model_dir = runs.run_dir(active.version) / "model"
    if not (model_dir / "policy.pt").is_file():
        streams.ack_feedback(client, ids)  # nothing can learn from them
        return {"skipped": f"model {active.version} has no policy", "entries": len(entries)}
    path = state_path(active.version)
    learner = OnlineLearner.from_model_dir(model_dir, path)
    stats = learn_from_entries(learner, entries, passes)
    if entries:
        learner.meta["model_version"] = active.version
        learner.save_state(path)
    result: dict[str, Any] = {"model_version": active.version, "entries": len(entries), **stats}
    trained = learner.meta.get("trained_id")
    saved = _saved_stream_id(driver, active.version, database)
    if trained and trained != saved:
        keep = ("transitions", "reward_mean", "critic_loss", "actor_loss", "q", "buffer")
        result["policy_version"] = policies.save_policy(
            driver,
            active.version,
            policy_without_history(learner.policy_bytes()),
            {
                "source": "online",
                "updates": learner.updates,
                "last_stream_id": trained,
                **{k: float(stats[k]) for k in keep if k in stats},
            },
            database,
        )
    streams.ack_feedback(client, ids)
    logger.info("policy update: %s", result)
    return result


def _saved_stream_id(driver: Driver, model_version: str, database: str) -> str | None:
    listed = policies.list_policies(driver, model_version, database)
    return str(listed[0].get("last_stream_id") or "") or None if listed else None


@app.task(bind=True)  # type: ignore[untyped-decorator]
def update_policy(self: Any, max_events: int = 20_000, passes: int = 4) -> dict[str, Any]:
    """Beat's periodic online update (skipped while another update holds the lock)."""
    client = runs.client()
    if not client.set(LOCK_KEY, context.WORKER_ID, nx=True, ex=LOCK_TTL_S):
        return {"skipped": "another update is running"}
    try:
        return run_policy_update(context.driver(), client, context.database(), max_events, passes)
    finally:
        if client.get(LOCK_KEY) == context.WORKER_ID:
            client.delete(LOCK_KEY)
