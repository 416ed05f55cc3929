"""Run records in Redis: state, current step, timings, progress and metrics of each run.

Keys: ``dpgcn:run:<run_id>`` (hash), ``dpgcn:runs`` (sorted set of run ids by start time),
``dpgcn:lease:<run_id>`` (the claimed step's lease, refreshed while its task runs, see
:mod:`workers.context`) and ``dpgcn:lock:slot-writer`` (the run allowed to write a model
version into a slot, see :meth:`RunRegistry.acquire_slot`). The model history itself lives in
Neo4j as ``(:Model)`` nodes (graphstore.writeback).

:class:`RunRegistry` is the one reader and writer of these keys; its Redis clients are handed
in. The API builds one in its lifespan (:meth:`RunRegistry.from_url`: redis-py's few default
retries, a read must answer quickly) and closes it on shutdown. A worker or CLI process uses
:func:`default_registry`, built from the settings on first use (:meth:`RunRegistry.for_worker`)
and closed at worker shutdown; the module-level functions below act on it, the way
:mod:`random`'s functions act on one hidden generator. This module imports no Celery and no
task module, so the API may import it.

Redis outages: a worker's state writes go through a patient client, which retries a failed
command with backoff for about :data:`PATIENCE_S` seconds, so a Redis restart during a step
delays the step instead of killing it. Progress reports (:meth:`RunRegistry.report_progress`)
are best effort: one try, a warning when Redis does not answer, and training goes on.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from dpgcn.settings import get_settings

logger = logging.getLogger(__name__)

RUNS_KEY = "dpgcn:runs"
LEASE_PREFIX = "dpgcn:lease:"
SLOT_LOCK_KEY = "dpgcn:lock:slot-writer"
#: How long a patient client keeps retrying one command while Redis is unreachable.
PATIENCE_S = 180.0
#: A failed progress report is not retried for this long (training goes on meanwhile).
PROGRESS_BACKOFF_S = 10.0
#: Run-record fields read back as integers.
INT_FIELDS = frozenset({"attempt", "recoveries", "retries"})
#: States after which no task of the run does any work.
FINAL_STATES = frozenset({"SUCCESS", "FAILURE"})
#: Lease of a claimed step when the registry is not told otherwise (seconds).
DEFAULT_LEASE_TTL_S = 60.0

#: Claim a step for a worker: only for the run's current attempt and while it is not finished.
#: Sets the step's lease (KEYS[2]) in the same script, so an owner never exists without one.
#: Returns 1 (claimed), -1 (run finished) or -2 (a stale attempt: the run was resumed).
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'SUCCESS' or state == 'FAILURE' then return -1 end
local current = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
if current ~= tonumber(ARGV[1]) then return -2 end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'owner_step', ARGV[3], 'owner_since', ARGV[4],
           ARGV[3] .. '_worker', ARGV[5])
redis.call('SET', KEYS[2], ARGV[2] .. ':' .. ARGV[1], 'PX', ARGV[6])
return 1
"""

#: Release a claim after the step's task finished (the next task is already queued).
_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1]
   and tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0') == tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'owner', '')
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

#: Refresh (or re-create, after a Redis restart lost it) the lease of a claim that is still
#: this worker's under this attempt. Returns 1 when refreshed, 0 when the claim is gone.
_RENEW = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1]
   and tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0') == tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

#: Take the slot-writer lock (KEYS[1]) for run ARGV[1]: free, already this run's, or held by a
#: run that ended (its record, KEYS prefix ARGV[2], is gone or SUCCESS/FAILURE).
_ACQUIRE_SLOT = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  local state = redis.call('HGET', ARGV[2] .. holder, 'state')
  if state and state ~= 'SUCCESS' and state ~= 'FAILURE' then return holder end
end
redis.call('SET', KEYS[1], ARGV[1])
return ''
"""

#: Free the slot-writer lock if ``ARGV[1]`` holds it.
_RELEASE_SLOT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""


def run_key(run_id: str) -> str:
    return f"dpgcn:run:{run_id}"


def lease_key(run_id: str) -> str:
    return LEASE_PREFIX + run_id


def new_run_id() -> str:
    """Sortable, unique, usable as a model version: ``v20261126-233000-1a2b3c``."""
    return time.strftime("v%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def run_dir(run_id: str) -> Path:
    """``<artifacts>/runs/<run_id>``: the run's files (export, model, checkpoints)."""
    if not run_id.replace("-", "").isalnum():
        raise ValueError(f"bad run id {run_id!r}")
    return get_settings().artifacts_dir / "runs" / run_id


def patient_client(url: str) -> redis.Redis:
    """A client whose command, finding Redis down, is retried with exponential backoff (0.25 s
    doubling up to 5 s) for about :data:`PATIENCE_S` seconds before it raises."""
    retries = int(PATIENCE_S / 5.0) + 5
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        retry=Retry(ExponentialBackoff(cap=5.0, base=0.25), retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        socket_connect_timeout=5.0,
        socket_timeout=30.0,
    )


def quick_client(url: str) -> redis.Redis:
    """A client for best-effort writes (progress): one try, short timeouts."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
    )


def _mapping(fields: dict[str, Any]) -> Any:
    return {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in fields.items()}


class RunRegistry:
    """The run records, read and written through the Redis clients handed in.

    Args:
        client: answers reads and writes; it must decode responses (``decode_responses=True``).
            A worker hands in a patient one (its writes wait out a Redis restart).
        reader: reads that must answer quickly (run lists, leases, the orphan scan); by
            default ``client``.
        progress: best-effort progress writes; by default ``client``.
        lease_ttl_s: how long a claimed step's lease lives without a renewal.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        reader: redis.Redis | None = None,
        progress: redis.Redis | None = None,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
    ) -> None:
        self.client = client
        self.reader = reader if reader is not None else client
        self.progress = progress if progress is not None else client
        self.lease_ttl_ms = int(lease_ttl_s * 1000)
        self._progress_paused_until: dict[str, float] = {}

    @classmethod
    def from_url(cls, url: str) -> RunRegistry:
        """One client with redis-py's default retries: reads answer (or fail) quickly."""
        return cls(redis.Redis.from_url(url, decode_responses=True))

    @classmethod
    def for_worker(cls, url: str, lease_ttl_s: float = DEFAULT_LEASE_TTL_S) -> RunRegistry:
        """A worker's (and the CLI's) registry: patient writes, quick reads, one-try
        progress."""
        return cls(
            patient_client(url),
            reader=redis.Redis.from_url(url, decode_responses=True),
            progress=quick_client(url),
            lease_ttl_s=lease_ttl_s,
        )

    def close(self) -> None:
        """Close the clients (each once)."""
        for c in {id(c): c for c in (self.client, self.reader, self.progress)}.values():
            c.close()

    def create(self, run_id: str, config: dict[str, Any]) -> None:
        now = time.time()
        pipe = self.client.pipeline()
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

    def update(self, run_id: str, **fields: Any) -> None:
        """Set fields of the run record (a worker's patient client waits out an outage)."""
        self.client.hset(run_key(run_id), mapping=_mapping(fields))

    def increment(self, run_id: str, field: str, by: int = 1) -> int:
        """Add ``by`` to an integer field of the run record; returns the new value."""
        return int(cast(int, self.client.hincrby(run_key(run_id), field, by)))

    def report_progress(self, run_id: str, info: dict[str, Any]) -> bool:
        """Best-effort progress write: ``False`` (and a warning) when Redis does not answer;
        the next report within :data:`PROGRESS_BACKOFF_S` is then skipped without trying.
        Never raises a Redis error: a progress report must not kill the task that makes it."""
        now = time.monotonic()
        if now < self._progress_paused_until.get(run_id, 0.0):
            return False
        try:
            self.progress.hset(run_key(run_id), mapping=_mapping({"progress": info}))
        except redis.RedisError as e:
            self._progress_paused_until[run_id] = now + PROGRESS_BACKOFF_S
            logger.warning(
                "run %s: progress not recorded (%s); training goes on, next try in %.0fs",
                run_id,
                e,
                PROGRESS_BACKOFF_S,
            )
            return False
        self._progress_paused_until.pop(run_id, None)
        return True

    def step_started(self, run_id: str, name: str) -> None:
        self.update(run_id, state="RUNNING", step=name, **{f"{name}_started_at": time.time()})

    def step_finished(self, run_id: str, name: str, **fields: Any) -> None:
        self.update(run_id, **{f"{name}_finished_at": time.time()}, **fields)

    def get(self, run_id: str, patient: bool = False) -> dict[str, Any] | None:
        """The run record, or None. ``patient``: read through ``client`` (a worker's waits out
        a Redis outage: the CLI's follower) instead of ``reader``."""
        raw = cast(
            dict[str, str], (self.client if patient else self.reader).hgetall(run_key(run_id))
        )
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

    def run_ids(self, limit: int = 200) -> list[str]:
        """The newest run ids."""
        return cast(list[str], self.reader.zrevrange(RUNS_KEY, 0, limit - 1))

    def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        return [r for r in (self.get(i) for i in self.run_ids(limit)) if r is not None]

    def claim(self, run_id: str, step: str, attempt: int, worker_id: str, hostname: str) -> str:
        """Record ``worker_id`` as the owner of the run's ``step`` for ``attempt``.

        Returns ``"claimed"``, ``"finished"`` (the run already ended: a late redelivery) or
        ``"stale"`` (the run was resumed under a newer attempt: this message is obsolete)."""
        result = self.client.eval(
            _CLAIM,
            2,
            run_key(run_id),
            lease_key(run_id),
            attempt,
            worker_id,
            step,
            time.time(),
            hostname,
            self.lease_ttl_ms,
        )
        return {1: "claimed", -1: "finished", -2: "stale"}[int(cast(int, result))]

    def release(self, run_id: str, attempt: int, worker_id: str) -> bool:
        """Clear the owner (and its lease) if it is still ``worker_id`` under ``attempt``."""
        return bool(
            self.client.eval(_RELEASE, 2, run_key(run_id), lease_key(run_id), worker_id, attempt)
        )

    def renew_lease(self, run_id: str, attempt: int, worker_id: str) -> bool:
        """Refresh the lease of a claim still held by ``worker_id``; ``False`` once it is
        not."""
        return bool(
            self.reader.eval(
                _RENEW,
                2,
                run_key(run_id),
                lease_key(run_id),
                worker_id,
                attempt,
                self.lease_ttl_ms,
            )
        )

    def has_lease(self, run_id: str) -> bool:
        return bool(self.reader.exists(lease_key(run_id)))

    def acquire_slot(self, run_id: str) -> str | None:
        """Make ``run_id`` the only run writing a model version into a slot (from write-back
        to activation). ``None`` when it holds the lock now; else the id of the run in flight
        that holds it. A lock left by a run that ended is taken over."""
        holder = str(self.client.eval(_ACQUIRE_SLOT, 1, SLOT_LOCK_KEY, run_id, run_key("")))
        return holder or None

    def release_slot(self, run_id: str) -> bool:
        return bool(self.client.eval(_RELEASE_SLOT, 1, SLOT_LOCK_KEY, run_id))

    def slot_holder(self) -> str | None:
        value = self.reader.get(SLOT_LOCK_KEY)
        return str(value) if value else None


@lru_cache(maxsize=1)
def default_registry() -> RunRegistry:
    """This worker's (or CLI's) registry, from the settings, built on first use."""
    from dpgcn.services import redis_url

    settings = get_settings()
    return RunRegistry.for_worker(redis_url(settings), settings.worker_heartbeat_ttl_s)


def close_default_registry() -> None:
    """Close the default registry if it was built (a worker's shutdown)."""
    if default_registry.cache_info().currsize:
        default_registry().close()
        default_registry.cache_clear()


# The default registry's operations, for the worker and CLI code (see the module docstring).


def client() -> redis.Redis:
    """The default registry's quick client, for other keys (locks, streams, heartbeats)."""
    return default_registry().reader


def create(run_id: str, config: dict[str, Any]) -> None:
    default_registry().create(run_id, config)


def update(run_id: str, **fields: Any) -> None:
    default_registry().update(run_id, **fields)


def increment(run_id: str, field: str, by: int = 1) -> int:
    return default_registry().increment(run_id, field, by)


def report_progress(run_id: str, info: dict[str, Any]) -> bool:
    return default_registry().report_progress(run_id, info)


def step_started(run_id: str, name: str) -> None:
    default_registry().step_started(run_id, name)


def step_finished(run_id: str, name: str, **fields: Any) -> None:
    default_registry().step_finished(run_id, name, **fields)


def get(run_id: str, patient: bool = False) -> dict[str, Any] | None:
    return default_registry().get(run_id, patient)


def run_ids(limit: int = 200) -> list[str]:
    return default_registry().run_ids(limit)


def list_runs(limit: int = 50) -> list[dict[str, Any]]:
    return default_registry().list_runs(limit)


def claim(run_id: str, step: str, attempt: int, worker_id: str, hostname: str) -> str:
    return default_registry().claim(run_id, step, attempt, worker_id, hostname)


def release(run_id: str, attempt: int, worker_id: str) -> bool:
    return default_registry().release(run_id, attempt, worker_id)


def renew_lease(run_id: str, attempt: int, worker_id: str) -> bool:
    return default_registry().renew_lease(run_id, attempt, worker_id)


def has_lease(run_id: str) -> bool:
    return default_registry().has_lease(run_id)


def acquire_slot(run_id: str) -> str | None:
    return default_registry().acquire_slot(run_id)


def release_slot(run_id: str) -> bool:
    return default_registry().release_slot(run_id)


def slot_holder() -> str | None:
    return default_registry().slot_holder()
