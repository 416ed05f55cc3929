"""The builder the loaders fill: nodes, links and raw events, aggregated into one
:class:`GraphSource` (no database)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

from graphstore import model
from graphstore.records import GraphSource, Row, aggregate
from graphstore.sources import text
from graphstore.sources.loaders.categories import category_id
from graphstore.sources.loaders.tables import check_id

# Logs repeat the same query text many times and stemming is the slow part of a load.
_normalize_query = lru_cache(maxsize=1 << 16)(text.normalize_query)


@lru_cache(maxsize=1 << 14)
def _terms(words: str) -> tuple[str, ...]:
    return tuple(text.terms(words))


class SourceBuilder:
    """Collects nodes, links and raw events; :meth:`build` aggregates them into a source.

    Node rows keep the first occurrence of an id. Raw interactions are aggregated with
    :func:`graphstore.records.aggregate` (one row per user–target–type: count, latest ts,
    summed weight) except that a ``RATED`` row's weight is the *latest* rating, not a sum.
    """

    def __init__(self) -> None:
        self.users: dict[str, Row] = {}
        self.items: dict[str, Row] = {}
        self.queries: dict[str, str] = {}
        self.categories: dict[str, Row] = {}
        self.item_terms: dict[tuple[str, str], None] = {}
        self.item_categories: dict[tuple[str, str], None] = {}
        self.events: dict[str, list[tuple[str, str, float, float]]] = {}
        self.led_to: Counter[tuple[str, str]] = Counter()

    # Nodes ---------------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        *,
        age: int | None = None,
        gender: str | None = None,
        occupation: str | None = None,
        consent: bool = True,
    ) -> None:
        if user_id in self.users:
            return
        check_id(user_id, "user id")  # the loaders check first, with file and line
        row = {"id": user_id, "age": age, "gender": gender, "occupation": occupation}
        row["consent"] = consent
        self.users[user_id] = row

    def add_item(
        self,
        item_id: str,
        *,
        title: str | None = None,
        price: float | None = None,
        term_text: str | None = None,
    ) -> None:
        """An item; its terms come from ``term_text`` (default: the title)."""
        if item_id in self.items:
            return
        check_id(item_id, "item id")  # the loaders check first, with file and line
        self.items[item_id] = {"id": item_id, "title": title, "price": price}
        self.add_item_terms(item_id, term_text if term_text is not None else title or "")

    def add_item_terms(self, item_id: str, words: str) -> None:
        for term in _terms(words):
            self.item_terms.setdefault((item_id, term), None)

    def add_query(self, raw: str) -> str | None:
        """The query node for raw text; returns its id, or None if it has no content terms."""
        query_id = _normalize_query(raw)
        if not query_id:
            return None
        self.queries.setdefault(query_id, " ".join(raw.split()))
        return query_id

    def add_category_path(self, names: Sequence[str], ids: Sequence[str] | None = None) -> str:
        """Categories along a path (root first) with their parent links; returns the leaf id.

        Without ``ids`` a level's id is the path up to it (``Electronics > Audio``), so equal
        names under different parents stay distinct categories.
        """
        if not names:
            raise ValueError("empty category path")
        parent: str | None = None
        for level, name in enumerate(names):
            cid = ids[level] if ids is not None else category_id(names[: level + 1])
            self.categories.setdefault(cid, {"id": cid, "name": name, "parent": parent})
            parent = cid
        assert parent is not None
        return parent

    def add_item_category(self, item_id: str, category: str) -> None:
        self.item_categories.setdefault((item_id, category), None)

    # Links ---------------------------------------------------------------------------------

    def add_event(self, rel: str, user: str, target: str, ts: float, weight: float = 1.0) -> None:
        if rel not in (*model.INTERACTIONS, model.SEARCHED):
            raise ValueError(f"unknown interaction type {rel!r}")
        self.events.setdefault(rel, []).append((user, target, ts, weight))

    def add_led_to(self, query_id: str, item_id: str) -> None:
        self.led_to[(query_id, item_id)] += 1

    # Result --------------------------------------------------------------------------------

    def build(
        self, name: str, rejected: Iterable[str] = (), skipped: dict[str, int] | None = None
    ) -> GraphSource:
        interactions: dict[str, list[Row]] = {}
        for rel in (model.SEARCHED, *model.INTERACTIONS):
            events = self.events.get(rel)
            if not events:
                continue
            rows = list(aggregate(events))
            if rel == model.RATED:
                latest: dict[tuple[str, str], tuple[float, float]] = {}
                for user, target, ts, rating in events:
                    seen = latest.get((user, target))
                    if seen is None or ts >= seen[0]:
                        latest[(user, target)] = (ts, rating)
                for row in rows:
                    row["weight"] = latest[(row["user"], row["target"])][1]
            interactions[rel] = rows
        query_terms = [{"query": q, "term": t} for q in self.queries for t in q.split()]
        item_terms = [{"item": i, "term": t} for i, t in self.item_terms]
        term_ids = dict.fromkeys([r["term"] for r in item_terms] + [r["term"] for r in query_terms])
        return GraphSource(
            name=name,
            users=list(self.users.values()),
            items=list(self.items.values()),
            queries=[{"id": q, "text": raw} for q, raw in self.queries.items()],
            terms=[{"id": t} for t in term_ids],
            categories=list(self.categories.values()),
            interactions=dict(interactions),
            led_to=[{"query": q, "item": i, "count": c} for (q, i), c in self.led_to.items()],
            query_terms=query_terms,
            item_terms=item_terms,
            item_categories=[{"item": i, "category": c} for i, c in self.item_categories],
            rejected=list(rejected),
            skipped={k: n for k, n in (skipped or {}).items() if n},
        )
