"""The writer of a load: sends a plan's batches (:mod:`graphstore.ingest_plan`), one
transaction per batch, and records each committed batch in the checkpoint.

Pipelining: batches are drawn (source rows generated, endpoints resolved, checkpoint digest
taken) by a producer thread while the previous batch is written, so the client's Python work
overlaps the server's.

Concurrent writers: CREATE batches are written by up to ``writers`` transactions at once, so
that the server's execution and commit of one batch use the second core while the other
commits; a part's first batches follow the previous part's last ones without waiting, and
batches are still recorded in order. MERGE batches are written one at a time, alone.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from neo4j import Driver

from graphstore.driver import execute
from graphstore.ingest_batches import Checkpoint, NodeIds
from graphstore.ingest_plan import Batch, Job

Progress = Callable[[str, int], None]


class _End:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``items`` produced by a background thread, up to ``depth`` ahead of the consumer.

    The producer's Python work (generating rows, resolving ids) runs while the consumer
    waits for the server (socket I/O releases the GIL). A producer error is raised in the
    consumer; when the consumer stops early the producer stops too."""
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            put(_End(e))
            return
        put(_End(None))

    thread = threading.Thread(target=produce, name="ingest-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            value = box.get()
            if isinstance(value, _End):
                if value.error is not None:
                    raise value.error
                return
            yield value
    finally:
        stop.set()
        thread.join(timeout=30)


@dataclass
class Written:
    """What writing some parts did: rows seen and written per part, batches written and
    batches skipped because the checkpoint had them."""

    rows: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    skipped_batches: int = 0


@dataclass
class Writer:
    """Sends batches to one database; fills ``ids`` from the node statements' answers."""

    driver: Driver
    database: str
    checkpoint: Checkpoint
    ids: NodeIds
    writers: int = 2
    pipeline: bool = True
    progress: Progress | None = None

    def send(self, job: Job, rows: list[Any]) -> list[Any]:
        params = {"rows": rows}
        if job.rel_type is not None:
            return execute(
                self.driver, job.statement, params, database=self.database, type=job.rel_type
            )
        return execute(self.driver, job.statement, params, database=self.database)

    def write(self, jobs: list[Job]) -> Written:
        """Write the parts ``jobs`` as one stream of batches: a CREATE part's batches (one
        row per node id or pair, so no two batches make the same node or relationship) go
        to up to ``writers`` transactions at once, and the next part's first batches follow
        its last ones without waiting; a MERGE batch waits until nothing else is in flight
        and is written alone. Batches are recorded and reported in stream order, when the
        oldest has committed, so the checkpoint only ever holds a committed prefix."""
        out = Written()
        totals = {job.part: [0, 0] for job in jobs}  # rows seen, written
        pool = ThreadPoolExecutor(self.writers, "ingest-writer") if self.writers > 1 else None
        in_flight: deque[tuple[Job, Batch, Future[list[Any]] | None]] = deque()

        def finish_oldest() -> None:
            job, batch, future = in_flight.popleft()
            if batch.done is not None:
                n = batch.done
                out.skipped_batches += 1
            else:
                n = 0
                if future is not None:
                    records = future.result()
                    if job.label is not None:
                        pairs = records[0]["ids"] if records else []
                        self.ids.add(job.label, pairs)
                        n = len(pairs)
                    else:
                        n = int(records[0]["written"]) if records else 0
                out.batches += 1
                self.checkpoint.record(job.part, batch.index, batch.digest, n)
            totals[job.part][0] += batch.size
            totals[job.part][1] += n
            if self.progress:
                self.progress(job.part, batch.size)

        def stream() -> Iterator[tuple[Job, Batch]]:
            for job in jobs:
                for batch in job.batches:
                    yield job, batch

        try:
            for job, batch in prefetch(stream()) if self.pipeline else stream():
                parallel = self.writers if job.concurrent else 1
                while len(in_flight) >= parallel:
                    finish_oldest()
                future: Future[list[Any]] | None = None
                if batch.done is None and batch.rows:
                    if pool is not None and parallel > 1:
                        future = pool.submit(self.send, job, batch.rows)
                    else:
                        future = Future()
                        future.set_result(self.send(job, batch.rows))
                in_flight.append((job, batch, future))
                while len(in_flight) >= parallel:
                    finish_oldest()
            while in_flight:
                finish_oldest()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        for part, (seen, written) in totals.items():
            out.rows[part] = seen
            out.written[part] = written
        return out
