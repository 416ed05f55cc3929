"""Local processes the CLI supervises (Neo4j, Redis, the worker and the API): the errors of
supervision, pid files, ports, stopping, secrets files and the status line of a service.

The servers' own modules (:mod:`dpgcn.neo4j_server`, :mod:`dpgcn.redis_server`,
:mod:`dpgcn.apps`) build on these; :mod:`dpgcn.services` is the façade the CLI calls.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A managed service could not be started, stopped or reached (root of :mod:`dpgcn`'s
    supervision errors)."""


class ProvisionError(ServiceError):
    """The managed Neo4j server could not be assembled, configured or started."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    managed: bool
    healthy: bool
    detail: str
    pid: int | None = None
    log: Path | None = None


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` when that process is alive."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    try:  # a zombie counts as gone
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        if state == "Z":
            return None
    except OSError:
        pass
    return pid


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def stop_process(pid_file: Path, name: str, timeout: float = 60.0, *, group: bool = False) -> bool:
    """SIGTERM, then SIGKILL after ``timeout`` (to the whole process group with ``group``:
    a supervisor with its app and pool children); True when something was stopped."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    logger.info("stopping %s (pid %d)", name, pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_pid(pid_file) is None:
            break
        time.sleep(0.3)
    else:
        what = "its process group" if group else "it"
        logger.warning("%s did not stop in %.0fs; killing %s", name, timeout, what)
        with contextlib.suppress(ProcessLookupError):
            (os.killpg if group else os.kill)(pid, signal.SIGKILL)
        time.sleep(0.5)
    pid_file.unlink(missing_ok=True)
    return True


def launch(argv: list[str], pid_file: Path, ready: Callable[[int], None], **popen: Any) -> int:
    """Start ``argv`` in its own session (stdin closed, ``popen`` passed on), record its pid
    in ``pid_file`` and call ``ready(pid)``, which blocks until the process serves or raises;
    on any error the process is terminated and the pid file removed. Returns the pid."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True, **popen)
    pid_file.write_text(str(proc.pid))
    try:
        ready(proc.pid)
    except Exception:
        if proc.poll() is None:
            proc.terminate()
        pid_file.unlink(missing_ok=True)
        raise
    return proc.pid


def write_secret(path: Path, value: str | None = None) -> str:
    """``value`` (default: a new random token) in a 0600 file in a 0700 directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    value = value if value is not None else secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
