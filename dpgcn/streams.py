"""Redis stream names shared by the API (producer) and the workers (consumers).

``FEEDBACK_STREAM`` carries one entry per accepted feedback event, appended by the API after
the event is committed to Neo4j. Fields (all strings): ``event_id``, ``user_id``, ``type``
(``search`` | ``view`` | ``click`` | ``purchase``), ``item_id`` (empty when none), ``query``
(normalized query text, empty when none), ``ts`` (event time, Unix seconds).

Outbox: an event is committed to Neo4j with ``streamed = false`` and marked ``streamed`` once
its entry is appended. The API appends right after the commit; when Redis is down it answers
``streamed: 0`` and the workers append the missing entries later (:mod:`workers.outbox`).
Delivery is at least once: an entry may be appended twice (an append whose mark was lost),
never not at all; consumers skip an ``event_id`` they have seen.

``SERVING_CHANGES_STREAM`` names users whose serving state changed (the API processes read
it, ``api.snapshot``); the outbox appends the users of the events it streams there too.
"""

from __future__ import annotations

from typing import Any

FEEDBACK_STREAM = "dpgcn:feedback"
FEEDBACK_FIELDS = ("event_id", "user_id", "type", "item_id", "query", "ts")

#: Users whose serving state changed (same name as ``api.changes.CHANGES_STREAM``).
SERVING_CHANGES_STREAM = "dpgcn:serving:changes"
SERVING_CHANGES_MAXLEN = 100_000

#: Consumer group of the online policy updater (workers.online).
POLICY_GROUP = "dpgcn-policy"

Entry = tuple[str, dict[str, str]]


def ensure_group(client: Any, group: str = POLICY_GROUP, stream: str = FEEDBACK_STREAM) -> None:
    """Create the consumer group (from the stream's beginning) unless it exists."""
    import redis

    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


def read_feedback(
    client: Any,
    consumer: str,
    count: int,
    group: str = POLICY_GROUP,
    stream: str = FEEDBACK_STREAM,
) -> list[Entry]:
    """Up to ``count`` entries for ``consumer``: first those it was given before and never
    acknowledged (a crashed update), then new ones. Needs a ``decode_responses`` client."""
    out: list[Entry] = []
    for start in ("0", ">"):
        if len(out) >= count:
            break
        reply = client.xreadgroup(group, consumer, {stream: start}, count=count - len(out))
        for _, entries in reply or []:
            out += [(str(i), dict(f)) for i, f in entries if f]
    return out


def ack_feedback(
    client: Any, ids: list[str], group: str = POLICY_GROUP, stream: str = FEEDBACK_STREAM
) -> int:
    return int(client.xack(stream, group, *ids)) if ids else 0


def entry_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id ``"<ms>-<seq>"`` as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def feedback_entry(
    event_id: str,
    user_id: str,
    type: str,
    item_id: str | None,
    query: str | None,
    ts: float,
) -> dict[str, str]:
    """The stream entry of one event, fields in :data:`FEEDBACK_FIELDS` order."""
    return {
        "event_id": event_id,
        "user_id": user_id,
        "type": type,
        "item_id": item_id or "",
        "query": query or "",
        "ts": repr(float(ts)),
    }


def append_feedback(client: Any, fields: dict[str, str], stream: str = FEEDBACK_STREAM) -> str:
    """Append one entry, its fields checked. Only tests call it: the API (``api/routes/events``)
    and the outbox (``workers/outbox``) append :func:`feedback_entry` rows in pipelines."""
    missing = set(FEEDBACK_FIELDS) - fields.keys()
    if missing:
        raise ValueError(f"feedback entry lacks {sorted(missing)}")
    return str(client.xadd(stream, {k: str(fields[k]) for k in FEEDBACK_FIELDS}))
