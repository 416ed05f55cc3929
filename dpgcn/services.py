"""The façade the CLI calls to supervise the managed services: which of Neo4j and Redis are
managed here, how clients reach them, and ``up`` / ``down`` / ``status`` / one service at a time
over :mod:`dpgcn.neo4j_server`, :mod:`dpgcn.redis_server` and :mod:`dpgcn.apps`.

Managed or external is decided by this home's state, not by the environment alone: a service
is managed when its variable (``NEO4J_URI`` / ``REDIS_URL``) is unset, or when the variable
points at the managed server's own address (a loopback host and the managed port: what
``dpgcn services env`` prints). Anything else is external, even while this home's managed
server runs: nothing is provisioned or stopped, and ``status`` only checks that it answers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from dpgcn import neo4j_server, redis_server
from dpgcn.apps import APP_PROCESSES, app_status, start_app, stop_app
from dpgcn.neo4j_install import Neo4jServerSpec
from dpgcn.processes import ServiceError, ServiceStatus, read_pid
from dpgcn.settings import Settings
from graphstore.errors import GraphStoreError

logger = logging.getLogger(__name__)

#: The façade: the connections, the whole set (up, down, status) and one service at a time;
#: the app processes' start and status come from :mod:`dpgcn.apps`.
__all__ = [
    "APP_PROCESSES",
    "SERVICE_NAMES",
    "Neo4jConnection",
    "ServiceError",
    "ServiceStatus",
    "app_status",
    "down",
    "neo4j_connection",
    "neo4j_managed",
    "neo4j_spec",
    "redis_managed",
    "redis_spec",
    "redis_url",
    "restart_service",
    "start_app",
    "start_service",
    "status",
    "stop_service",
    "up",
]


@dataclass(frozen=True)
class Neo4jConnection:
    uri: str
    user: str
    password: str
    database: str
    managed: bool
    browser_url: str | None


def neo4j_spec(settings: Settings) -> Neo4jServerSpec:
    n = settings.neo4j
    return Neo4jServerSpec(
        home=settings.neo4j_home,
        cache=settings.cache,
        secrets_dir=settings.secrets_dir,
        version=n.version,
        browser_version=n.browser_version,
        bolt_port=n.bolt_port,
        http_port=n.http_port,
        heap=n.heap,
        pagecache=n.pagecache,
    )


def neo4j_managed(settings: Settings) -> bool:
    """Whether Neo4j is this home's managed server (see the module docstring)."""
    n = settings.neo4j
    return n.managed or _points_here(n.uri, n.bolt_port)


def neo4j_connection(settings: Settings) -> Neo4jConnection:
    """How to reach Neo4j: the external URI, or the managed server and its password file."""
    n = settings.neo4j
    if not n.managed:
        if n.password is None:
            raise ServiceError("NEO4J_URI is set but NEO4J_PASSWORD is not")
        return Neo4jConnection(
            uri=str(n.uri),
            user=n.user,
            password=n.password.get_secret_value(),
            database=n.database,
            managed=False,
            browser_url=None,
        )
    spec = neo4j_spec(settings)
    password = neo4j_server.read_password(spec)
    if password is None:
        raise ServiceError(
            f"The managed Neo4j has no password yet ({spec.password_file} is missing): "
            "run `dpgcn services up` first."
        )
    return Neo4jConnection(
        uri=spec.bolt_uri,
        user="neo4j",
        password=password,
        database=n.database,
        managed=True,
        browser_url=spec.browser_url,
    )


# ---------------------------------------------------------------------------------------------
# Redis


def redis_spec(settings: Settings) -> redis_server.RedisServerSpec:
    return redis_server.RedisServerSpec(
        home=settings.redis_home, secrets_dir=settings.secrets_dir, port=settings.redis.port
    )


def redis_url(settings: Settings) -> str:
    if settings.redis.url:
        return settings.redis.url
    return redis_spec(settings).url()


def redis_managed(settings: Settings) -> bool:
    """Whether Redis is this home's managed server (see the module docstring)."""
    return settings.redis.managed or _points_here(settings.redis.url, settings.redis.port)


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _points_here(url: str | None, port: int) -> bool:
    """Whether ``url`` names a loopback host on the managed ``port``."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
        return parts.hostname in _LOOPBACK and parts.port == port
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------
# Both


def up(settings: Settings) -> None:
    """Start whatever is managed; a no-op for what already runs. Waits until both answer."""
    if redis_managed(settings):
        redis_server.start(redis_spec(settings))
    if neo4j_managed(settings):
        _start_neo4j(settings)


def _start_neo4j(settings: Settings) -> None:
    try:
        neo4j_server.start(neo4j_spec(settings))
    except GraphStoreError as e:  # the server rejected the password in the secrets file
        raise ServiceError(str(e)) from e


def down(settings: Settings) -> list[str]:
    """Stop the app processes and the managed servers; returns the names stopped."""
    stopped = [name for name in APP_PROCESSES if stop_app(settings, name)]
    if neo4j_managed(settings) and neo4j_server.stop(neo4j_spec(settings)):
        stopped.append("neo4j")
    if redis_managed(settings) and redis_server.stop(redis_spec(settings)):
        stopped.append("redis")
    return stopped


#: Names ``stop_service`` / ``start_service`` / ``restart_service`` accept.
SERVICE_NAMES = ("neo4j", "redis", "worker", "api")


def _check_name(settings: Settings, name: str) -> None:
    if name not in SERVICE_NAMES:
        raise ServiceError(f"unknown service {name!r}; one of {', '.join(SERVICE_NAMES)}")
    external = (name == "neo4j" and not neo4j_managed(settings)) or (
        name == "redis" and not redis_managed(settings)
    )
    if external:
        raise ServiceError(f"{name} is external (not managed in {settings.home}): not touched")


def stop_service(settings: Settings, name: str) -> bool:
    """Stop one managed service or app process; ``False`` when it was not running."""
    _check_name(settings, name)
    if name == "neo4j":
        return neo4j_server.stop(neo4j_spec(settings))
    if name == "redis":
        return redis_server.stop(redis_spec(settings))
    return stop_app(settings, name)


def start_service(settings: Settings, name: str) -> None:
    """Start one managed service or app process (a no-op when it runs)."""
    _check_name(settings, name)
    if name == "neo4j":
        _start_neo4j(settings)
    elif name == "redis":
        redis_server.start(redis_spec(settings))
    else:
        start_app(settings, name)


def restart_service(settings: Settings, name: str) -> None:
    """Stop (when running) and start one managed service or app process."""
    stop_service(settings, name)
    start_service(settings, name)


def status(settings: Settings, wait: float = 0.0) -> list[ServiceStatus]:
    """Each service's health; with ``wait`` > 0, wait that long for Bolt/Redis to answer."""
    return [_neo4j_status(settings, wait), _redis_status(settings, wait)]


def _neo4j_status(settings: Settings, wait: float) -> ServiceStatus:
    from graphstore.driver import connect, ping

    managed = neo4j_managed(settings)
    pid = read_pid(neo4j_spec(settings).pid_file) if managed else None
    log = neo4j_spec(settings).log_file if managed else None
    if managed and pid is None:
        return ServiceStatus("neo4j", True, False, "not running", None, log)
    try:
        conn = neo4j_connection(settings)
    except ServiceError as e:
        return ServiceStatus("neo4j", managed, False, str(e), pid, log)
    deadline = time.monotonic() + wait
    while True:
        try:
            with connect(conn.uri, conn.user, conn.password) as driver:
                version = ping(driver, conn.database)
            detail = f"{conn.uri} Neo4j {version}"
            if conn.browser_url:
                detail += f", Browser {conn.browser_url}"
            return ServiceStatus("neo4j", managed, True, detail, pid, log)
        except GraphStoreError as e:
            if time.monotonic() >= deadline:
                return ServiceStatus("neo4j", managed, False, str(e), pid, log)
            time.sleep(0.5)


def _redis_status(settings: Settings, wait: float) -> ServiceStatus:
    managed = redis_managed(settings)
    spec = redis_spec(settings)
    pid = read_pid(spec.pid_file) if managed else None
    log = spec.log_file if managed else None
    if managed and pid is None:
        return ServiceStatus("redis", True, False, "not running", None, log)
    try:
        url = redis_url(settings)
    except ServiceError as e:
        return ServiceStatus("redis", managed, False, str(e), pid, log)
    deadline = time.monotonic() + wait
    while True:
        reason = redis_server.ping(url)
        if reason is None:
            host = url.rsplit("@", 1)[-1]
            return ServiceStatus("redis", managed, True, f"redis://{host}", pid, log)
        if time.monotonic() >= deadline:
            return ServiceStatus("redis", managed, False, reason, pid, log)
        time.sleep(0.3)
