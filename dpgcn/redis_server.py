"""The managed Redis: configured with a generated password, started and stopped locally.

:class:`RedisServerSpec` says where one home's server lives; :func:`start` is a no-op when
it runs. Whether Redis is managed at all, and the URL clients use, are decided by
:mod:`dpgcn.services`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from dpgcn.processes import (
    ServiceError,
    launch,
    port_open,
    read_pid,
    stop_process,
    write_secret,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedisServerSpec:
    """Where and on which port the managed Redis runs."""

    home: Path
    secrets_dir: Path
    port: int = 6379

    @property
    def pid_file(self) -> Path:
        return self.home / "redis.pid"

    @property
    def password_file(self) -> Path:
        return self.secrets_dir / "redis-password"

    @property
    def log_file(self) -> Path:
        return self.home / "redis.log"

    def url(self) -> str:
        """The managed server's URL with its password (which ``start`` generates once)."""
        try:
            password = self.password_file.read_text().strip()
        except FileNotFoundError as e:
            raise ServiceError(
                "The managed Redis has no password yet: run `dpgcn services up` first."
            ) from e
        return f"redis://:{quote(password, safe='')}@127.0.0.1:{self.port}/0"


def ping(url: str) -> str | None:
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


def _write_config(spec: RedisServerSpec) -> Path:
    spec.home.mkdir(parents=True, exist_ok=True)
    if not spec.password_file.exists():
        write_secret(spec.password_file)
    password = spec.password_file.read_text().strip()
    conf = spec.home / "redis.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {spec.port}",
                    "protected-mode yes",
                    f"requirepass {password}",
                    "daemonize no",
                    f"dir {spec.home}",
                    "appendonly yes",
                    "save 60 1000",
                    f"logfile {spec.log_file}",
                    "",
                ]
            )
        )
    return conf


def start(spec: RedisServerSpec, timeout: float = 30.0) -> str:
    """Start the managed Redis (a no-op when it runs) and wait until it answers; returns its
    URL."""
    if read_pid(spec.pid_file) is not None:
        url = spec.url()
        wait(spec, url, timeout)
        return url
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceError(
            "redis-server is not installed (apt-get install redis-server), or set REDIS_URL "
            "to an external Redis."
        )
    if port_open(spec.port):
        raise ServiceError(
            f"Port {spec.port} on 127.0.0.1 is taken by another process; stop it or set REDIS_PORT."
        )
    conf = _write_config(spec)
    logger.info("starting Redis on 127.0.0.1:%d (log: %s)", spec.port, spec.log_file)
    url = spec.url()
    launch(
        [binary, str(conf)],
        spec.pid_file,
        lambda pid: wait(spec, url, timeout),
        cwd=spec.home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return url


def wait(spec: RedisServerSpec, url: str, timeout: float) -> None:
    """Block until Redis answers at ``url``; fail fast when the managed process exits."""
    deadline = time.monotonic() + timeout
    reason: str | None = "not started"
    while time.monotonic() < deadline:
        if read_pid(spec.pid_file) is None:
            raise ServiceError(f"Redis exited during start-up; see {spec.log_file}")
        reason = ping(url)
        if reason is None:
            return
        time.sleep(0.2)
    raise ServiceError(
        f"Redis did not answer within {timeout:.0f}s ({reason}); see {spec.log_file}"
    )


def stop(spec: RedisServerSpec) -> bool:
    return stop_process(spec.pid_file, "Redis")
