"""The product's own processes (the worker and the API), run in the background by
``dpgcn services up --app``: started under :func:`dpgcn.logs.supervise`, one pid file and one
log each in the state home."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

from dpgcn.processes import ServiceError, ServiceStatus, port_open, read_pid, stop_process
from dpgcn.settings import Settings

logger = logging.getLogger(__name__)

APP_PROCESSES = ("worker", "api")


def app_pid_file(settings: Settings, name: str) -> Path:
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
    pid_file = app_pid_file(settings, name)
    pid = read_pid(pid_file)
    if pid is not None:
        return pid
    if name == "api" and port_open(settings.api.port, settings.api.host):
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
        while not port_open(settings.api.port, settings.api.host):
            if proc.poll() is not None or time.monotonic() > deadline:
                pid_file.unlink(missing_ok=True)
                raise ServiceError(f"the API did not start; see {log}")
            time.sleep(0.3)
    return proc.pid


def stop_app(settings: Settings, name: str, timeout: float = 30.0) -> bool:
    """SIGTERM to the app's supervisor (which passes it on); after ``timeout`` its whole
    process group (supervisor, app, pool children) is killed."""
    return stop_process(app_pid_file(settings, name), name, timeout, group=True)


def app_status(settings: Settings) -> list[ServiceStatus]:
    out = []
    for name in APP_PROCESSES:
        pid = read_pid(app_pid_file(settings, name))
        if pid is None:
            continue
        detail = (
            f"http://{settings.api.host}:{settings.api.port}"
            if name == "api"
            else "celery queues graph,training"
        )
        out.append(ServiceStatus(name, True, True, detail, pid, app_log(settings, name)))
    return out
