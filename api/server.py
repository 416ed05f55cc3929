"""Run the API under uvicorn with ``TCP_NODELAY`` on every connection, whatever the number of
worker processes.

uvicorn (h11) writes a response's headers and its body in two ``send`` calls. asyncio turns
Nagle's algorithm off only on sockets whose protocol number reads ``IPPROTO_TCP``; with
``--workers N > 1`` uvicorn binds the listening socket itself as ``socket(AF_INET)``
(protocol number 0), so the accepted connections keep Nagle on: the body waits for the
client's delayed ACK of the headers (Linux delays an ACK by up to 40 ms). Here the listening
socket gets ``TCP_NODELAY``, which Linux copies to every accepted socket (the measured effect:
``docs/benchmarks-api.md``).

With several workers, uvicorn's processes all accept from one shared socket, and whichever
process is awake when a burst of connections arrives takes most of them: a load generator
(or proxy) that opens its keep-alive connections at once can leave one worker busy and the
other idle. Here each worker process binds **its own** listening socket with
``SO_REUSEPORT``, so the kernel spreads new connections over the workers by their address
hash (Linux).

    python -m api.server --workers 2 --port 8000          # what ``dpgcn serve --workers 2`` runs
    python -m api.server --app bench.bench_api:baseline_app --factory --port 8050
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import socket
from typing import Any


def serve(
    app: str = "api.main:app",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    factory: bool = False,
) -> None:
    """Serve ``app`` (an import string) with ``workers`` processes on one listening socket."""
    options = {"log_level": log_level, "factory": factory}
    if workers <= 1:
        _serve_one(app, host, port, options, reuse_port=False)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_serve_one, args=(app, host, port, options, True), daemon=False)
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()

    def stop(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # one worker gone (crashed or stopped): stop the others too, and leave with its status
    while all(proc.is_alive() for proc in procs):
        procs[0].join(0.5)
    stop(signal.SIGTERM, None)
    for proc in procs:
        proc.join(30)
    codes = [proc.exitcode or 0 for proc in procs]
    if any(codes):
        raise SystemExit(max(abs(c) for c in codes))


def _serve_one(app: str, host: str, port: int, options: dict[str, Any], reuse_port: bool) -> None:
    """One uvicorn server process on its own listening socket."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,  # the API writes its own access log (route templates, no ids)
        **options,
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(config.backlog)
    sock.set_inheritable(True)
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--app", default="api.main:app", help="ASGI app as module:attribute")
    p.add_argument("--factory", action="store_true", help="--app names a factory function")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--log-level", default="info")
    args = p.parse_args()
    serve(
        args.app,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        factory=args.factory,
    )


if __name__ == "__main__":
    main()
