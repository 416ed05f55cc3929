"""Users whose serving state changed after a snapshot's load began (events, consent, erasure).

The process that takes the change marks the user at once; it also appends the user id to the
Redis stream ``dpgcn:serving:changes``, which every API process reads (non-blocking ``XREAD``)
once per scoring batch, i.e. after the request arrived, so a change acknowledged by one
process is honoured by every process's next answer. A changed user is answered from the graph
as it is now (and the user's cached top-N list is never used again); if the stream cannot be
read, the batch is answered from the graph (never a stale answer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dpgcn.streams import SERVING_CHANGES_STREAM

logger = logging.getLogger(__name__)

#: User ids whose serving state changed (events, consent, erasure), one entry per change.
CHANGES_STREAM = SERVING_CHANGES_STREAM
#: Approximate length the changes stream is trimmed to.
CHANGES_MAXLEN = 100_000
#: Seconds after a failed read of the changes stream before it is read again (meanwhile the
#: graph answers).
RETRY_S = 1.0
#: Seconds between two background reads of the changes stream (cached lists, which no
#: scoring batch reads the stream for, honour another process's change within about this).
SYNC_S = 0.1
#: A cached list is used only while the last successful read of the stream is younger than
#: this (the bound for another process's change when reads are slow or failing).
STALE_S = 1.0


@dataclass
class Changes:
    """Users changed since a snapshot's load began (this process's and, through Redis, every
    other API process's), by the monotonic time this process learnt of the change."""

    redis: Any = None
    _users: dict[str, float] = field(default_factory=dict)
    _last_id: str | None = None
    _retry_at: float = 0.0
    #: ``time.monotonic()`` of the last successful read of the stream.
    synced_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, user_id: str) -> None:
        with self._lock:
            self._users[user_id] = time.monotonic()

    def changed(self, user_id: str) -> bool:
        return user_id in self._users

    def publish(self, user_ids: Iterable[str], pipe: Any = None) -> None:
        """Mark ``user_ids`` here and queue them for the other processes (on ``pipe``, a Redis
        pipeline the caller executes, or at once); raises the Redis error."""
        ids = list(dict.fromkeys(user_ids))
        for u in ids:
            self.mark(u)
        if self.redis is None or not ids:
            return
        target = pipe if pipe is not None else self.redis.pipeline(transaction=False)
        for u in ids:
            target.xadd(CHANGES_STREAM, {"user_id": u}, maxlen=CHANGES_MAXLEN, approximate=True)
        if pipe is None:
            target.execute()

    def start(self) -> None:
        """Remember where the changes stream ends now (changes before this are in any
        snapshot loaded later). Without Redis, only this process's changes are seen."""
        if self.redis is None:
            return
        try:
            last = self.redis.xrevrange(CHANGES_STREAM, count=1)
            self._last_id = last[0][0].decode() if last else "0-0"
        except Exception as e:  # read it all later: whatever it holds counts as changed
            logger.warning("changes stream unreadable at start: %s", type(e).__name__)
            self._last_id = "0-0"

    def sync(self) -> None:
        """Read what other processes published since the last read; raises when Redis does
        not answer (the caller must then not trust the snapshot). After a failed read, the
        next :data:`RETRY_S` seconds raise at once without trying (a Redis outage must not
        cost every batch a connect timeout)."""
        if self.redis is None:
            return
        if time.monotonic() < self._retry_at:
            raise ConnectionError("changes stream unreadable a moment ago")
        started = time.monotonic()
        try:
            self._read()
        except Exception:
            self._retry_at = time.monotonic() + RETRY_S
            raise
        self.synced_at = max(self.synced_at, started)

    def fresh(self) -> bool:
        """Whether every change published more than :data:`STALE_S` ago is known here."""
        return self.redis is None or time.monotonic() - self.synced_at < STALE_S

    def follow(self, stop: threading.Event) -> None:
        """Read the stream every :data:`SYNC_S` until ``stop`` is set (a thread's body)."""
        while not stop.wait(SYNC_S):
            try:
                self.sync()
            except Exception as e:  # cached lists are not used meanwhile (fresh() is false)
                logger.debug("changes stream unreadable: %s", type(e).__name__)

    def _read(self) -> None:
        if self._last_id is None:
            self._last_id = "0-0"
        while True:
            reply = self.redis.xread({CHANGES_STREAM: self._last_id}, count=10_000)
            now = time.monotonic()
            got = 0
            for _, entries in reply or []:
                got += len(entries)
                with self._lock:
                    for entry_id, fields in entries:
                        user = fields.get(b"user_id")
                        if user is not None:
                            self._users[user.decode()] = now
                        self._last_id = entry_id.decode()
            if got < 10_000:
                return

    def forget_before(self, started: float) -> None:
        """Drop the changes a snapshot whose load began at ``started`` already holds."""
        with self._lock:
            self._users = {u: t for u, t in self._users.items() if t >= started}
