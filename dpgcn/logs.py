"""Logging configured once per entry point (CLI, worker, API), and the background processes'
rotated log files.

Every line a process logs carries a timestamp: :func:`configure_logging` puts one in front of
each record (or in the ``ts`` field of JSON lines). The worker and the API started in the
background (``dpgcn services up --app``) run under :func:`supervise`: their whole output
(logging, Celery's banner, uvicorn's own lines, a crash's traceback) goes through one writer
into ``<home>/logs/<name>.log``, rotated by size (:class:`logging.handlers.RotatingFileHandler`,
20 MB, five old files kept), each line stamped with the time it was written. Processes under
the supervisor leave the timestamp to it (``DPGCN_LOG_SUPERVISED``).
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

#: Set in the environment of a process whose output :func:`supervise` stamps and rotates.
SUPERVISED_ENV = "DPGCN_LOG_SUPERVISED"
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_BACKUPS = 5
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and exception)."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime(TIME_FORMAT, time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload)


def plain_formatter(timestamps: bool = True) -> logging.Formatter:
    """``2026-12-06T05:35:00.123Z INFO name: message`` (UTC); without the time when
    ``timestamps`` is false (the supervisor adds it)."""
    if not timestamps:
        return logging.Formatter("%(levelname)s %(name)s: %(message)s")
    formatter = logging.Formatter(
        "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s", datefmt=TIME_FORMAT
    )
    formatter.converter = time.gmtime
    return formatter


def configure_logging(level: str = "INFO", json_lines: bool | None = None) -> None:
    if json_lines is None:
        json_lines = os.environ.get("DPGCN_LOG_JSON", "") == "1"
    handler = logging.StreamHandler(sys.stderr)
    supervised = os.environ.get(SUPERVISED_ENV, "") == "1"
    handler.setFormatter(JsonFormatter() if json_lines else plain_formatter(not supervised))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("neo4j", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _StampedLines(logging.Formatter):
    """A raw output line with the time it was written in front (JSON lines kept as they are:
    they carry their own ``ts``)."""

    def format(self, record: logging.LogRecord) -> str:
        line = record.getMessage()
        if line.startswith("{"):
            return line
        stamp = time.strftime(TIME_FORMAT, time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z {line}"


def rotating_writer(
    path: Path, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS
) -> logging.Logger:
    """A logger that writes raw lines, stamped, to ``path`` rotated by size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handler.setFormatter(_StampedLines())
    writer = logging.getLogger(f"dpgcn.supervised.{path}")
    writer.propagate = False
    writer.handlers[:] = [handler]
    writer.setLevel(logging.INFO)
    return writer


def supervise(
    argv: list[str],
    log: Path,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backups: int = DEFAULT_BACKUPS,
) -> int:
    """Run ``argv`` with its stdout and stderr written to ``log`` (stamped, rotated); SIGTERM
    and SIGINT are passed on to it. Returns its exit status."""
    writer = rotating_writer(log, max_bytes, backups)
    env = {**os.environ, SUPERVISED_ENV: "1", "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    assert child.stdout is not None
    for raw in iter(child.stdout.readline, b""):
        writer.info("%s", raw.decode("utf-8", "replace").rstrip("\n"))
    code = child.wait()
    writer.info("%s", f"[dpgcn] {Path(argv[0]).name} exited with status {code}")
    for handler in writer.handlers:
        handler.close()
    return code


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Run a command with its output in a rotated log.")
    p.add_argument("--file", required=True, type=Path, help="the log file")
    p.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    p.add_argument("--backups", type=int, default=DEFAULT_BACKUPS)
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- the command and its arguments")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command given")
    raise SystemExit(supervise(command, args.file, args.max_bytes, args.backups))


if __name__ == "__main__":
    main()
