"""``dpgcn serve`` as its own process on a free loopback port, for the integration tests that
need the real API process (faults, restores, load)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.integration.conftest import DPGCN


@dataclass
class Api:
    url: str
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def rss_mib(self) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        kib = re.search(r"VmRSS:\s+(\d+) kB", text)
        assert kib is not None
        return int(kib.group(1)) / 1024

    def metric(self, name: str) -> float:
        """The sum of a Prometheus metric's samples (0 when absent); ``name`` may carry all
        its labels, in the order the metric declares them."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name + "{") or line.startswith(name + " ")
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ready(url: str, snapshot: bool = False) -> bool:
    """Whether /ready is 200 (and, with ``snapshot``, the snapshot holds the active version)."""
    try:
        r = httpx.get(url + "/ready", timeout=5)
        body = r.json()
    except (httpx.HTTPError, ValueError):
        return False
    return r.status_code == 200 and (not snapshot or bool((body.get("snapshot") or {}).get("ok")))


def wait_ready(api: Api, timeout: float = 180.0) -> None:
    """Until the API is ready with its snapshot; fails with the log's tail if it exits."""
    deadline = time.monotonic() + timeout
    while not ready(api.url, snapshot=True):
        assert api.proc.poll() is None, api.log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the API did not become ready"
        time.sleep(0.5)


@contextlib.contextmanager
def serve(log: Path, **env: str) -> Iterator[Api]:
    """The API process with ``env`` added to this environment, logging to ``log``; ready
    with its snapshot when entered, stopped (SIGTERM, then SIGKILL) on exit."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [DPGCN, "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
    api = Api(f"http://127.0.0.1:{port}", "127.0.0.1", port, proc, log)
    try:
        wait_ready(api)
        yield api
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
