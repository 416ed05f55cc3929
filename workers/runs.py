"""Run records in Redis: state, current step, timings, progress and metrics of each run.

Keys: ``dpgcn:run:<run_id>`` (hash) and ``dpgcn:runs`` (sorted set of run ids by start time).
The model history itself lives in Neo4j as ``(:Model)`` nodes (graphstore.writeback).
"""

from __future__ import annotations

import json
import time
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import redis

from dpgcn.services import redis_url
from dpgcn.settings import get_settings

RUNS_KEY = "dpgcn:runs"
#: Run-record fields read back as integers.
INT_FIELDS = frozenset({"attempt", "recoveries", "retries"})
#: States after which no task of the run does any work.
FINAL_STATES = frozenset({"SUCCESS", "FAILURE"})

#: Claim a step for a worker: only for the run's current attempt and while it is not finished.
#: Returns 1 (claimed), -1 (run finished) or -2 (a stale attempt: the run was resumed).
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'SUCCESS' or state == 'FAILURE' then return -1 end
local current = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
if current ~= tonumber(ARGV[1]) then return -2 end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'owner_step', ARGV[3], 'owner_since', ARGV[4],
           ARGV[3] .. '_worker', ARGV[5])
return 1
"""

#: Release a claim after the step's task finished (the next task is already queued).
_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1]
   and tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0') == tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'owner', '')
  return 1
end
return 0
"""


def run_key(run_id: str) -> str:
    return f"dpgcn:run:{run_id}"


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    return redis.Redis.from_url(redis_url(get_settings()), decode_responses=True)


def new_run_id() -> str:
    """Sortable, unique, usable as a model version: ``v20261126-233000-1a2b3c``."""
    return time.strftime("v%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def run_dir(run_id: str) -> Path:
    if not run_id.replace("-", "").isalnum():
        raise ValueError(f"bad run id {run_id!r}")
    return get_settings().artifacts_dir / "runs" / run_id


def create(run_id: str, config: dict[str, Any]) -> None:
    now = time.time()
    pipe = client().pipeline()
    pipe.hset(
        run_key(run_id),
        mapping={
            "run_id": run_id,
            "state": "QUEUED",
            "step": "",
            "created_at": now,
            "config": json.dumps(config),
            "attempt": 0,
            "owner": "",
        },
    )
    pipe.zadd(RUNS_KEY, {run_id: now})
    pipe.execute()


def update(run_id: str, **fields: Any) -> None:
    mapping = {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in fields.items()}
    client().hset(run_key(run_id), mapping=mapping)  # type: ignore[arg-type]


def step_started(run_id: str, name: str) -> None:
    update(run_id, state="RUNNING", step=name, **{f"{name}_started_at": time.time()})


def step_finished(run_id: str, name: str, **fields: Any) -> None:
    update(run_id, **{f"{name}_finished_at": time.time()}, **fields)


def get(run_id: str) -> dict[str, Any] | None:
    raw = cast(dict[str, str], client().hgetall(run_key(run_id)))
    if not raw:
        return None
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("config", "progress", "metrics"):
            out[key] = json.loads(value)
        elif key.endswith("_at"):
            out[key] = float(value)
        elif key in INT_FIELDS:
            out[key] = int(value)
        else:
            out[key] = value
    return out


def list_runs(limit: int = 50) -> list[dict[str, Any]]:
    ids = cast(list[str], client().zrevrange(RUNS_KEY, 0, limit - 1))
    return [r for r in (get(i) for i in ids) if r is not None]


def claim(run_id: str, step: str, attempt: int, worker_id: str, hostname: str) -> str:
    """Record ``worker_id`` as the owner of the run's ``step`` for ``attempt``.

    Returns ``"claimed"``, ``"finished"`` (the run already ended: a late redelivery) or
    ``"stale"`` (the run was resumed under a newer attempt: this message is obsolete)."""
    result = int(
        cast(
            int,
            client().eval(
                _CLAIM, 1, run_key(run_id), attempt, worker_id, step, time.time(), hostname
            ),
        )
    )
    return {1: "claimed", -1: "finished", -2: "stale"}[result]


def release(run_id: str, attempt: int, worker_id: str) -> bool:
    """Clear the owner if it is still ``worker_id`` under ``attempt``."""
    return bool(client().eval(_RELEASE, 1, run_key(run_id), worker_id, attempt))


def run_ids(limit: int = 200) -> list[str]:
    """The newest run ids."""
    return cast(list[str], client().zrevrange(RUNS_KEY, 0, limit - 1))
