"""Append-only logs kept outside the graph, in the state home, that a restore replays.

A backup restores the graph as it was; two facts must outlive that: users erased since
(``erasures.log``: only what the tombstones hold, the salted id hash and the salt it was
made with, never a plain id) and API keys revoked since (``revocations.log``: the public key
id). Each line is one JSON object, written with ``O_APPEND`` and ``fsync``; the files are mode
0600. The directory is the state home (``DPGCN_HOME``, else the settings' default), or what
:func:`set_directory` set (the API and the CLI set it from their settings).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ERASURES = "erasures.log"
REVOCATIONS = "revocations.log"

_directory: Path | None = None


def set_directory(path: Path | None) -> None:
    """Where the logs live (``None``: back to ``DPGCN_HOME`` / the default state home)."""
    global _directory
    _directory = path


def directory() -> Path:
    if _directory is not None:
        return _directory
    home = os.environ.get("DPGCN_HOME")
    if home:
        return Path(home)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dpgcn"


def path(name: str) -> Path:
    return directory() / name


def append(name: str, record: dict[str, Any]) -> None:
    """Append one record and fsync it; raises ``OSError`` when it cannot be made durable."""
    target = path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read(name: str, source: Path | None = None) -> list[dict[str, Any]]:
    """The records of a log (none when it does not exist). A torn last line (a crash during
    the write) is skipped; a bad line elsewhere is an error naming file and line."""
    target = source or path(name)
    if not target.exists():
        return []
    lines = target.read_text(encoding="utf-8").split("\n")
    records: list[dict[str, Any]] = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            if number == len(lines):  # no newline after it: a torn last write
                logger.warning("%s:%d: skipping a torn last line", target, number)
                continue
            raise ValueError(f"{target}:{number}: not a log record ({e})") from e
        records.append(record)
    return records
