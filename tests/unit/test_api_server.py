"""``api/server.py``: several worker processes, each on its own ``SO_REUSEPORT`` socket, all
answering, with Nagle's algorithm off on the listening sockets (no services needed)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[2]


def tiny_app() -> Starlette:
    """Answers with the pid of the worker process that served the request."""

    async def pid(_: Request) -> PlainTextResponse:
        return PlainTextResponse(str(os.getpid()))

    return Starlette(routes=[Route("/pid", pid)])


def _read_response(c: socket.socket) -> bytes:
    """One whole HTTP response (headers and a Content-Length body) from ``c``."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += c.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += c.recv(4096)
    return body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_workers_share_the_port_and_the_connections() -> None:
    port = _free_port()
    argv = [sys.executable, "-m", "api.server", "--app", "tests.unit.test_api_server:tiny_app"]
    argv += ["--factory", "--workers", "2", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(argv, cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/pid", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "server not up"
                time.sleep(0.3)
        time.sleep(2)  # the second worker may start a moment later
        pids: set[str] = set()
        conns = []
        for _ in range(32):  # new connections, spread by the kernel over both sockets
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
            conns.append(c)
        for c in conns:
            pids.add(_read_response(c).decode())
            c.close()
        assert len(pids) == 2, pids
        # Nagle off: one request on a kept-alive connection answers in far less than the
        # ~40 ms a delayed ACK would add to the body's segment
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            times = []
            for _ in range(20):
                t = time.perf_counter()
                c.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
                _read_response(c)
                times.append(time.perf_counter() - t)
            assert sorted(times)[10] < 0.03, times
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
