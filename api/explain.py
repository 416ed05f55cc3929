"""Explanations of recommended items: the graph evidence, gathered from in-memory data.

For a personalized answer the evidence of each item comes from the snapshot (api/snapshot.py)
and the user's profile (from the snapshot, or read from the graph with the user's state), in
the order of preference of ``serving/get_explanations``: the user's newest search that led to
the item, else a search of the user sharing a term with it, else how many other members of the
user's segment bought it, else the user's newest seen item sharing a category with it, else
"matches your taste". No Cypher read per request. Non-personalized answers (popular, segment,
cold start) take their evidence from the graph (``serving/get_explanations``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from api.schemas import Explanation, Strategy
from api.snapshot import ItemIndex, Profile
from graphstore import serving
from graphstore.serving import SearchLinks

#: How many of a user's newest seen items are looked through for one of the same category.
SIMILAR_SCAN = 200

_HOW = {"PURCHASED": "bought", "CLICKED": "clicked", "VIEWED": "viewed", "RATED": "rated"}


def explain_rows(
    items: ItemIndex,
    links: Mapping[str, SearchLinks],
    segment_buys: Mapping[str, tuple[str | None, dict[str, int]]],
    profile: Profile,
    rows: Sequence[int],
) -> dict[str, serving.Explanation]:
    """The evidence for each of the item ``rows`` recommended to the user of ``profile``."""
    searches = [(links[q].text, links[q]) for q in profile.searches if q in links]
    segment = segment_buys.get(profile.segment) if profile.segment else None
    scan = list(zip(profile.seen[:SIMILAR_SCAN], profile.how[:SIMILAR_SCAN], strict=False))
    out: dict[str, serving.Explanation] = {}
    for row in rows:
        item_id = items.ids[row]
        led_query = next((text for text, q in searches if item_id in q.led), None)
        term_query = term = None
        for text, q in searches:
            shared = q.terms & items.terms[row]
            if shared:
                term_query, term = text, min(shared)
                break
        buyers = 0
        if segment is not None:
            buyers = segment[1].get(item_id, 0) - (1 if row in profile.bought else 0)
        similar: tuple[int, str, str] | None = None
        mine = items.categories[row]
        if mine:
            for other, how in scan:
                if other != row:
                    common = [c for c in items.categories[other] if c in mine]
                    if common:
                        similar = (other, how, common[0])
                        break
        out[item_id] = serving.Explanation(
            item_id=item_id,
            led_query=led_query,
            term_query=term_query,
            term=term,
            similar_id=items.ids[similar[0]] if similar else None,
            similar_title=items.titles[similar[0]] if similar else None,
            similar_how=similar[1] if similar else None,
            category=similar[2] if similar else None,
            segment=segment[0] if segment is not None else None,
            segment_buyers=max(buyers, 0),
            purchases=0,
        )
    return out


def describe(item_id: str, e: serving.Explanation | None, strategy: Strategy) -> Explanation:
    """The explanation shown for ``item_id`` from its evidence ``e``."""
    if e is not None and e.led_query:
        return Explanation(
            kind="search",
            text=f"you searched '{e.led_query}' → this item",
            via=[e.led_query, item_id],
        )
    if e is not None and e.term_query and e.term:
        return Explanation(
            kind="search_term",
            text=f"you searched '{e.term_query}' → term '{e.term}' → this item",
            via=[e.term_query, e.term, item_id],
        )
    if e is not None and e.segment_buyers > 0:
        n = e.segment_buyers
        return Explanation(
            kind="segment",
            text=f"{n} {'user' if n == 1 else 'users'} in your segment ({e.segment}) bought it",
            via=[e.segment or "", item_id],
        )
    if e is not None and e.similar_id:
        how = _HOW.get(e.similar_how or "", "liked")
        name = e.similar_title or e.similar_id
        where = f" (same category: {e.category})" if e.category else ""
        return Explanation(
            kind="similar_item",
            text=f"similar to '{name}' you {how}{where}",
            via=[e.similar_id, e.category or "", item_id],
        )
    if strategy == "cold_start_features":
        return Explanation(
            kind="similar_users",
            text="liked by users of your age, gender and occupation",
            via=[item_id],
        )
    if strategy in ("popular", "segment"):
        bought = e.purchases if e is not None else 0
        text = f"popular: bought by {bought} users" if bought else "popular with shoppers"
        return Explanation(kind="popular", text=text, via=[item_id])
    return Explanation(kind="taste", text="matches your taste profile", via=[item_id])
