"""Deployment settings: one ``Settings`` object, read from the environment once.

Experiment settings live elsewhere (``training.config.TrainConfig``); ``training`` never reads
the environment. Environment variables:

* ``NEO4J_URI`` / ``NEO4J_USER`` / ``NEO4J_PASSWORD`` / ``NEO4J_DATABASE``: an external Neo4j
  (docker compose, Aura, a cluster). With ``NEO4J_URI`` set nothing is provisioned locally.
* ``NEO4J_BOLT_PORT`` / ``NEO4J_HTTP_PORT`` / ``NEO4J_HEAP`` / ``NEO4J_PAGECACHE``: the managed
  server.
* ``REDIS_URL``: an external Redis; ``REDIS_PORT`` for the managed one.
* ``DPGCN_HOME``: state directory (server data, logs, secrets, artifacts).
* ``DPGCN_API_HOST`` / ``DPGCN_API_PORT``: where ``dpgcn serve`` listens.
* ``DPGCN_VISIBILITY_TIMEOUT_S``, ``DPGCN_WORKER_HEARTBEAT_S``, ``DPGCN_WORKER_HEARTBEAT_TTL_S``,
  ``DPGCN_RECOVER_EVERY_S``, ``DPGCN_POLICY_UPDATE_EVERY_S``: workers (docs/operations.md).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Passwords a Neo4j server must never run with.
DEFAULT_PASSWORDS = frozenset({"neo4j", "password", "changeme", ""})


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dpgcn"


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dpgcn"


class Neo4jSettings(BaseSettings):
    """Neo4j connection (external) or managed-server settings."""

    model_config = SettingsConfigDict(env_prefix="NEO4J_", extra="ignore")

    uri: str | None = None
    user: str = "neo4j"
    password: SecretStr | None = None
    database: str = "neo4j"
    bolt_port: int = 7687
    http_port: int = 7474
    heap: str = "2g"
    pagecache: str = "2g"
    version: str = "5.26.19"
    browser_version: str = "5.24.0"

    @field_validator("password")
    @classmethod
    def _reject_default_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() in DEFAULT_PASSWORDS:
            raise ValueError("NEO4J_PASSWORD is a default password; choose a real one")
        return value

    @property
    def managed(self) -> bool:
        return self.uri is None


class RedisSettings(BaseSettings):
    """Redis (Celery broker, results, feedback stream)."""

    model_config = SettingsConfigDict(env_prefix="REDIS_", extra="ignore")

    url: str | None = None
    port: int = 6379

    @property
    def managed(self) -> bool:
        return self.url is None


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DPGCN_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    max_k: int = 100
    #: Most events one ``POST /v1/events`` batch may carry.
    max_events: int = Field(default=500, ge=1, le=10_000)
    #: How often each API process re-reads its in-memory API key table (the bound on how
    #: long a revoked key keeps working, plus one read).
    key_cache_s: float = Field(default=10.0, gt=0.0)
    #: Least time between two key-table reads caused by unknown key ids (a request with an
    #: unknown id never reads Neo4j itself; a key created a moment ago works at once).
    key_miss_refresh_s: float = Field(default=1.0, gt=0.0)
    #: How long a key id found unknown is refused without looking at the table again.
    key_negative_cache_s: float = Field(default=300.0, gt=0.0)
    #: Largest request body accepted, in bytes, by any route (413 above it): checked from
    #: Content-Length before the body is read, and counted while a chunked body streams.
    max_body_bytes: int = Field(default=1_048_576, ge=0)
    #: Per-route body limits overriding ``max_body_bytes``, by route path, e.g.
    #: ``DPGCN_API_BODY_LIMITS='{"/v1/events": 2097152}'``.
    body_limits: dict[str, int] = Field(default_factory=dict)
    #: How often the active model version and its newest policy are re-read.
    refresh_s: float = Field(default=2.0, gt=0.0)
    #: How long popular items / queries (the non-personalized answers) are cached.
    popular_cache_s: float = Field(default=60.0, ge=0.0)
    #: Threads NumPy/BLAS may use per process (>1 oversubscribes the request thread pool).
    blas_threads: int = Field(default=1, ge=1)
    #: Serve users from an in-memory snapshot of the active version (api/snapshot.py); off:
    #: every request reads the user from Neo4j.
    snapshot: bool = True
    #: Most recommendation requests scored together in one batch.
    max_batch: int = Field(default=64, ge=1)
    #: FastAPI's own OpenTelemetry spans and metrics (only useful with an OTel SDK set up;
    #: the API's metrics are Prometheus at /metrics).
    otel: bool = False


class VectorIndexSettings(BaseSettings):
    """HNSW options of the embedding vector indexes (graphstore.writeback.IndexOptions); an
    index whose options differ is rebuilt when its slot is next written."""

    model_config = SettingsConfigDict(env_prefix="DPGCN_VECTOR_", extra="ignore")

    #: Neighbours per node in the HNSW graph (Neo4j: 1–512).
    hnsw_m: int = Field(default=16, ge=1, le=512)
    #: Candidates kept while inserting a vector (Neo4j: 1–3200): lower builds faster, finds less.
    hnsw_ef_construction: int = Field(default=100, ge=1, le=3200)
    #: Int8-quantized vectors in the index (Neo4j's own default is on; off measured more
    #: accurate at no build-time cost, docs/benchmarks.md write-back).
    quantization: bool = False


class Settings(BaseSettings):
    """Everything a deployment configures."""

    model_config = SettingsConfigDict(env_prefix="DPGCN_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    cache: Path = Field(default_factory=_default_cache)
    neo4j: Neo4jSettings = Field(default_factory=Neo4jSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    vector_index: VectorIndexSettings = Field(default_factory=VectorIndexSettings)
    retrain_every_s: float = 6 * 3600.0
    #: Celery/Redis: unacknowledged tasks are redelivered after this (longer than any task).
    visibility_timeout_s: int = 12 * 3600
    #: Workers refresh a heartbeat key this often; it expires after ``heartbeat_ttl_s``, after
    #: which the runs the worker owned are resumed by another worker (workers.recovery).
    worker_heartbeat_s: float = 5.0
    worker_heartbeat_ttl_s: float = 30.0
    #: How often a worker looks for runs whose owner died.
    recover_every_s: float = 15.0
    #: How often beat runs the online policy update from the feedback stream (0: never).
    policy_update_every_s: float = 300.0
    #: How often beat scrubs erased users out of training artifacts on disk (0: never).
    privacy_scrub_every_s: float = 300.0
    #: How often beat gives new nodes vectors of the active version (0: never).
    refresh_every_s: float = 60.0
    log_level: str = "INFO"

    @field_validator("home", "cache")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        """Relative ``DPGCN_HOME``/``DPGCN_CACHE`` are taken from the working directory once,
        here: servers started from them (Redis changes into its ``dir``) get absolute paths."""
        return path.expanduser().absolute()

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def neo4j_home(self) -> Path:
        return self.home / "neo4j"

    @property
    def redis_home(self) -> Path:
        return self.home / "redis"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
