"""Supervision of the managed services: Neo4j (through :mod:`graphstore.provision`) and Redis.

Managed or external is decided by this home's state, not by the environment alone: a service
is managed when its variable (``NEO4J_URI`` / ``REDIS_URL``) is unset, or when the variable
points at the managed server's own address (a loopback host and the managed port: what
``dpgcn services env`` prints). Anything else is external, even while this home's managed
server runs: nothing is provisioned or stopped, and ``status`` only checks that it answers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from dpgcn.settings import Settings
from graphstore import provision
from graphstore.errors import GraphStoreError

if TYPE_CHECKING:
    from graphstore.ingest import LoadSummary
    from graphstore.records import GraphSource

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A managed service could not be started, stopped or reached."""


@dataclass(frozen=True)
class Neo4jConnection:
    uri: str
    user: str
    password: str
    database: str
    managed: bool
    browser_url: str | None


def neo4j_spec(settings: Settings) -> provision.Neo4jServerSpec:
    n = settings.neo4j
    return provision.Neo4jServerSpec(
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
    password = provision.read_password(spec)
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


def _redis_pid_file(settings: Settings) -> Path:
    return settings.redis_home / "redis.pid"


def _redis_password_file(settings: Settings) -> Path:
    return settings.secrets_dir / "redis-password"


def _redis_log(settings: Settings) -> Path:
    return settings.redis_home / "redis.log"


def _write_secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def redis_url(settings: Settings) -> str:
    if settings.redis.url:
        return settings.redis.url
    return _managed_redis_url(settings)


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


def _managed_redis_url(settings: Settings) -> str:
    try:
        password = _redis_password_file(settings).read_text().strip()
    except FileNotFoundError as e:
        raise ServiceError(
            "The managed Redis has no password yet: run `dpgcn services up` first."
        ) from e
    return f"redis://:{quote(password, safe='')}@127.0.0.1:{settings.redis.port}/0"


def _redis_ping(url: str) -> str | None:
    """None when Redis answers PING, else the reason."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
        return None
    except redis.AuthenticationError:
        return "Redis rejected the password"
    except redis.RedisError as e:
        return str(e)


def start_redis(settings: Settings, timeout: float = 30.0) -> str:
    pid_file = _redis_pid_file(settings)
    if provision.read_pid(pid_file) is not None:
        url = redis_url(settings)
        _wait_redis(settings, url, timeout)
        return url
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceError(
            "redis-server is not installed (apt-get install redis-server), or set REDIS_URL "
            "to an external Redis."
        )
    port = settings.redis.port
    if provision.port_open(port):
        raise ServiceError(
            f"Port {port} on 127.0.0.1 is taken by another process; stop it or set REDIS_PORT."
        )
    home = settings.redis_home
    home.mkdir(parents=True, exist_ok=True)
    password_file = _redis_password_file(settings)
    if not password_file.exists():
        _write_secret(password_file)
    password = password_file.read_text().strip()
    conf = home / "redis.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {port}",
                    "protected-mode yes",
                    f"requirepass {password}",
                    "daemonize no",
                    f"dir {home}",
                    "appendonly yes",
                    "save 60 1000",
                    f"logfile {_redis_log(settings)}",
                    "",
                ]
            )
        )
    logger.info("starting Redis on 127.0.0.1:%d (log: %s)", port, _redis_log(settings))
    proc = subprocess.Popen(
        [binary, str(conf)],
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    pid_file.write_text(str(proc.pid))
    url = redis_url(settings)
    try:
        _wait_redis(settings, url, timeout)
    except ServiceError:
        if proc.poll() is None:
            proc.terminate()
        pid_file.unlink(missing_ok=True)
        raise
    return url


def _wait_redis(settings: Settings, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    reason: str | None = "not started"
    while time.monotonic() < deadline:
        if redis_managed(settings) and provision.read_pid(_redis_pid_file(settings)) is None:
            raise ServiceError(f"Redis exited during start-up; see {_redis_log(settings)}")
        reason = _redis_ping(url)
        if reason is None:
            return
        time.sleep(0.2)
    raise ServiceError(
        f"Redis did not answer within {timeout:.0f}s ({reason}); see {_redis_log(settings)}"
    )


# ---------------------------------------------------------------------------------------------
# Both


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    managed: bool
    healthy: bool
    detail: str
    pid: int | None = None
    log: Path | None = None


def up(settings: Settings) -> None:
    """Start whatever is managed; a no-op for what already runs. Waits until both answer."""
    if redis_managed(settings):
        start_redis(settings)
    if neo4j_managed(settings):
        _start_neo4j(settings)


def _start_neo4j(settings: Settings) -> None:
    try:
        provision.start(neo4j_spec(settings))
    except GraphStoreError as e:
        raise ServiceError(str(e)) from e


def down(settings: Settings) -> list[str]:
    """Stop the app processes and the managed servers; returns the names stopped."""
    stopped = [name for name in APP_PROCESSES if stop_app(settings, name)]
    if neo4j_managed(settings) and provision.stop(neo4j_spec(settings)):
        stopped.append("neo4j")
    if redis_managed(settings) and provision.stop_process(_redis_pid_file(settings), "Redis"):
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
        return provision.stop(neo4j_spec(settings))
    if name == "redis":
        return provision.stop_process(_redis_pid_file(settings), "Redis")
    return stop_app(settings, name)


def start_service(settings: Settings, name: str) -> None:
    """Start one managed service or app process (a no-op when it runs)."""
    _check_name(settings, name)
    if name == "neo4j":
        _start_neo4j(settings)
    elif name == "redis":
        start_redis(settings)
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
    pid = provision.read_pid(neo4j_spec(settings).pid_file) if managed else None
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
    pid = provision.read_pid(_redis_pid_file(settings)) if managed else None
    log = _redis_log(settings) if managed else None
    if managed and pid is None:
        return ServiceStatus("redis", True, False, "not running", None, log)
    try:
        url = redis_url(settings)
    except ServiceError as e:
        return ServiceStatus("redis", managed, False, str(e), pid, log)
    deadline = time.monotonic() + wait
    while True:
        reason = _redis_ping(url)
        if reason is None:
            host = url.rsplit("@", 1)[-1]
            return ServiceStatus("redis", managed, True, f"redis://{host}", pid, log)
        if time.monotonic() >= deadline:
            return ServiceStatus("redis", managed, False, reason, pid, log)
        time.sleep(0.3)


# ---------------------------------------------------------------------------------------------
# Bulk import (an initial load into the empty, managed database)


@dataclass(frozen=True)
class BulkLoad:
    """What ``bulk_load`` did and how long each step took (seconds)."""

    summary: LoadSummary
    files_s: float
    stop_s: float
    import_s: float
    start_s: float
    schema_s: float
    #: Peak resident memory of the neo4j-admin import process, MiB.
    import_peak_rss_mib: float
    directory: Path

    @property
    def seconds(self) -> float:
        return self.files_s + self.stop_s + self.import_s + self.start_s + self.schema_s


def bulk_load(
    settings: Settings,
    source: GraphSource,
    *,
    replace: bool = False,
    workdir: Path | None = None,
    threads: int | None = None,
    keep_files: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> BulkLoad:
    """Load ``source`` with ``neo4j-admin database import`` (see :mod:`graphstore.bulk`).

    Only for the locally managed server, and only into an empty database (``replace=True``:
    whatever it holds is replaced). The server is stopped for the import and started again;
    the schema is created afterwards. Refused with :class:`ServiceError` otherwise.

    The new store's transaction ids start afresh: a client that used the database before
    (a driver holding bookmarks) has to reconnect. ``services up --app`` processes are
    stopped before the import and started again after it."""
    from graphstore import bulk
    from graphstore.driver import connect, execute
    from graphstore.schema import apply_schema

    if not neo4j_managed(settings):
        raise ServiceError(
            "--bulk imports offline into the locally managed Neo4j only; NEO4J_URI points at "
            "an external server: load it without --bulk (the online loader)."
        )
    spec = neo4j_spec(settings)
    if provision.read_pid(spec.pid_file) is None:
        raise ServiceError("the managed Neo4j is not running: run `dpgcn services up` first.")
    conn = neo4j_connection(settings)
    with connect(conn.uri, conn.user, conn.password) as driver:
        records = execute(driver, "ingest/count_all_nodes", database=conn.database, read=True)
    nodes = int(records[0]["n"])
    if nodes and not replace:
        raise ServiceError(
            f"--bulk replaces the whole database and is only for an empty one; "
            f"{conn.database!r} holds {nodes:,} nodes. Load without --bulk (the online "
            "loader merges into what is there), or add --replace to delete everything first."
        )
    directory = workdir or settings.home / "import" / f"bulk-{os.getpid()}"
    # The worker and the API lose the server for the import, and their drivers' bookmarks
    # name transactions of the replaced store: they are stopped and started again.
    apps = [name for name in APP_PROCESSES if provision.read_pid(_app_pid_file(settings, name))]
    try:
        files = bulk.write_import_files(source, directory, progress=progress)
        java = provision.find_java()
        started = time.perf_counter()
        for name in apps:
            stop_app(settings, name)
        provision.stop(spec)
        stop_s = time.perf_counter() - started
        try:
            result = bulk.run_import(spec, java, files, database=conn.database, threads=threads)
        finally:
            started = time.perf_counter()
            provision.start(spec)
            start_s = time.perf_counter() - started
    except GraphStoreError as e:
        raise ServiceError(str(e)) from e
    finally:
        if not keep_files:
            shutil.rmtree(directory, ignore_errors=True)
    for name in apps:
        start_app(settings, name)
    started = time.perf_counter()
    with connect(conn.uri, conn.user, conn.password) as driver:
        apply_schema(driver, conn.database)
    schema_s = time.perf_counter() - started
    logger.info("bulk-loaded %s: %s", source.name, files.summary.written)
    return BulkLoad(
        summary=files.summary,
        files_s=files.seconds,
        stop_s=stop_s,
        import_s=result.seconds,
        start_s=start_s,
        schema_s=schema_s,
        import_peak_rss_mib=result.peak_rss_mib,
        directory=directory,
    )


# ---------------------------------------------------------------------------------------------
# The product's own processes (worker, API), run in the background by `services up --app`


APP_PROCESSES = ("worker", "api")


def _app_pid_file(settings: Settings, name: str) -> Path:
    return settings.home / "run" / f"{name}.pid"


def app_log(settings: Settings, name: str) -> Path:
    return settings.home / "logs" / f"{name}.log"


def _app_argv(settings: Settings, name: str) -> list[str]:
    exe = [sys.executable, "-m", "dpgcn.cli"]
    if name == "worker":
        return [*exe, "worker", "--queues", "graph,training"]
    return [*exe, "serve", "--host", settings.api.host, "--port", str(settings.api.port)]


def start_app(settings: Settings, name: str, timeout: float = 60.0) -> int:
    """Start ``dpgcn worker`` or ``dpgcn serve`` in the background (no-op when running).

    The process runs under :func:`dpgcn.logs.supervise`: its output goes to
    ``<home>/logs/<name>.log``, each line stamped, the file rotated by size. The pid file
    holds the supervisor's pid (it passes SIGTERM on)."""
    pid_file = _app_pid_file(settings, name)
    pid = provision.read_pid(pid_file)
    if pid is not None:
        return pid
    if name == "api" and provision.port_open(settings.api.port, settings.api.host):
        raise ServiceError(f"Port {settings.api.port} is taken; set DPGCN_API_PORT.")
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    log = app_log(settings, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    supervisor = [sys.executable, "-m", "dpgcn.logs", "--file", str(log), "--"]
    with log.with_suffix(".stderr").open("ab") as err:
        proc = subprocess.Popen(
            [*supervisor, *_app_argv(settings, name)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    pid_file.write_text(str(proc.pid))
    if name == "api":
        deadline = time.monotonic() + timeout
        while not provision.port_open(settings.api.port, settings.api.host):
            if proc.poll() is not None or time.monotonic() > deadline:
                pid_file.unlink(missing_ok=True)
                raise ServiceError(f"the API did not start; see {log}")
            time.sleep(0.3)
    return proc.pid


def stop_app(settings: Settings, name: str, timeout: float = 30.0) -> bool:
    """SIGTERM to the app's supervisor (which passes it on); after ``timeout`` its whole
    process group (supervisor, app, pool children) is killed."""
    pid_file = _app_pid_file(settings, name)
    pid = provision.read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    logger.info("stopping %s (pid %d)", name, pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while provision.read_pid(pid_file) is not None:
        if time.monotonic() > deadline:
            logger.warning("%s did not stop in %.0fs; killing its process group", name, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            time.sleep(0.5)
            break
        time.sleep(0.3)
    pid_file.unlink(missing_ok=True)
    return True


def app_status(settings: Settings) -> list[ServiceStatus]:
    out = []
    for name in APP_PROCESSES:
        pid = provision.read_pid(_app_pid_file(settings, name))
        if pid is None:
            continue
        detail = (
            f"http://{settings.api.host}:{settings.api.port}"
            if name == "api"
            else "celery queues graph,training"
        )
        out.append(ServiceStatus(name, True, True, detail, pid, app_log(settings, name)))
    return out
