"""A load's rows as batches: batching, the checkpoint of committed batches (resume), the
internal node ids of relationship endpoints, and relationship rows as short lists.

Internal ids: every node statement returns ``[id, internal node id]`` of its rows, which the
loader keeps (:class:`NodeIds`); relationship rows are then sent as short lists
``[source node id, target node id, properties…]`` and matched with an id seek (plus a label
check) instead of a unique-index seek per endpoint. Endpoints the load did not write itself
(nodes of an earlier load, batches a resumed load skipped) are looked up by key once per
batch and remembered. Rows whose endpoint is missing are not sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any

from neo4j import Driver

from graphstore.driver import execute
from graphstore.ingest_parts import INTERACTION_PROPS, LinkPart
from graphstore.records import Row

logger = logging.getLogger(__name__)


def batched(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def digest(batch: list[Row]) -> str:
    """A stable content hash of one batch of rows (the checkpoint's identity of a batch)."""
    text = json.dumps(batch, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def unique_rows(rows: Iterable[Row], keys: tuple[str, ...]) -> Iterator[Row]:
    """Rows with the first occurrence of each key (one node per id, one link per pair)."""
    seen: set[tuple[Any, ...]] = set()
    for row in rows:
        key = tuple(row[k] for k in keys)
        if key not in seen:
            seen.add(key)
            yield row


class Checkpoint:
    """Per-part lists of (digest, written) of the committed batches of one load, in a file
    rewritten atomically after every batch."""

    def __init__(self, path: Path | None, source: str, batch_size: int) -> None:
        self.path = path
        self.key = {"source": source, "batch_size": batch_size}
        self.parts: dict[str, list[list[Any]]] = {}
        if path is not None and path.is_file():
            try:
                saved = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                logger.warning("ignoring unreadable load checkpoint %s", path)
                saved = {}
            if saved.get("key") == self.key:
                self.parts = saved.get("parts", {})
                logger.info("resuming %s from checkpoint %s", source, path)

    def done(self, part: str, index: int, batch_digest: str) -> int | None:
        """The written count of batch ``index`` of ``part`` if it was committed with the
        same content; None if it has to be written."""
        committed = self.parts.get(part, [])
        if index < len(committed) and committed[index][0] == batch_digest:
            return int(committed[index][1])
        return None

    def record(self, part: str, index: int, batch_digest: str, written: int) -> None:
        if self.path is None:
            return
        committed = self.parts.setdefault(part, [])
        del committed[index:]  # a changed batch invalidates whatever was recorded after it
        committed.append([batch_digest, written])
        tmp = self.path.with_name(self.path.name + f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"key": self.key, "parts": self.parts}))
        tmp.replace(self.path)

    def finish(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class NodeIds:
    """Internal node ids by (label, key) for one load: filled from what the node statements
    return; a key the load did not write is looked up in the graph once (per batch, for all
    such keys of the batch) and remembered, found or not."""

    def __init__(self, driver: Driver, database: str) -> None:
        self._driver = driver
        self._database = database
        self._ids: dict[str, dict[Any, int]] = {}
        self._absent: dict[str, set[Any]] = {}
        self.looked_up = 0

    def add(self, label: str, pairs: Iterable[Any]) -> None:
        """Record ``[key, internal id]`` pairs (a node statement's ``ids``)."""
        self._ids.setdefault(label, {}).update(pairs)

    def resolve(self, label: str, keys: Iterable[Any]) -> Mapping[Any, int]:
        """The id map of ``label`` once every key in ``keys`` has been looked for."""
        known = self._ids.setdefault(label, {})
        absent = self._absent.setdefault(label, set())
        wanted = {k for k in keys if k not in known and k not in absent}
        if wanted:
            records = execute(
                self._driver,
                "ingest/get_node_ids",
                {"ids": list(wanted)},
                database=self._database,
                read=True,
                label=label,
            )
            found = dict(records[0]["ids"]) if records else {}
            known.update(found)
            absent.update(wanted.difference(found))
            self.looked_up += len(wanted)
        return known


def link_endpoints(
    batch: list[Row], part: LinkPart, ids: NodeIds
) -> tuple[list[int | None], list[int | None]]:
    """The internal node ids of each row's source and target (None: not in the graph)."""
    k0, k1 = part.keys
    sources = [r[k0] for r in batch]
    targets = [r[k1] for r in batch]
    src = ids.resolve(part.src, sources)
    dst = ids.resolve(part.dst, targets)
    return list(map(src.get, sources)), list(map(dst.get, targets))


def link_rows(batch: list[Row], part: LinkPart, ids: NodeIds) -> list[list[Any]]:
    """Relationship rows as ``[source node id, target node id, properties…]``; rows with a
    missing endpoint are left out (they count as unmatched)."""
    out: list[list[Any]] = []
    props = part.props
    ends = zip(*link_endpoints(batch, part, ids), batch, strict=True)
    if props == INTERACTION_PROPS:
        for a, b, r in ends:
            if a is not None and b is not None:
                out.append([a, b, r["count"], r["ts"], r["weight"]])
        return out
    for a, b, r in ends:
        if a is not None and b is not None:
            out.append([a, b, *(r[p] for p in props)])
    return out
