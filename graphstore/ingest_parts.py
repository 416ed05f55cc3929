"""What a load writes, part by part: each part's rows, the statements that write them (the
MERGE statement, and the CREATE statement of the fast path for a new section of the graph)
and, for relationships, the endpoint labels and keys.

Data only (no driver): :mod:`graphstore.ingest_plan` picks a statement per part,
:mod:`dpgcn.bulk_import` writes the same parts as import files.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphstore import model


@dataclass(frozen=True)
class NodePart:
    """One node part: the source attribute, its label and statements."""

    part: str
    label: str
    merge: str
    #: None: always MERGE (categories are few and link to their parents).
    create: str | None


@dataclass(frozen=True)
class LinkPart:
    """One relationship part: its rows' endpoint keys and properties, in statement order."""

    part: str
    merge: str
    create: str
    src: str
    type: str
    dst: str
    keys: tuple[str, str]
    props: tuple[str, ...] = ()
    #: The statements take the type as a ``__TYPE__`` placeholder (the interactions).
    typed: bool = False


#: The node parts, in write order.
NODE_PART_SPECS = (
    NodePart("users", model.USER, "ingest/merge_users", "ingest/create_users"),
    NodePart("items", model.ITEM, "ingest/merge_items", "ingest/create_items"),
    NodePart("queries", model.QUERY, "ingest/merge_queries", "ingest/create_queries"),
    NodePart("terms", model.TERM, "ingest/merge_terms", "ingest/create_terms"),
    NodePart("categories", model.CATEGORY, "ingest/merge_categories", None),
)

#: The properties of an interaction (user → item or query), in statement order.
INTERACTION_PROPS = ("count", "ts", "weight")

_LINK_PARTS = (
    LinkPart(
        "led_to",
        "ingest/merge_led_to",
        "ingest/create_led_to",
        model.QUERY,
        model.LED_TO,
        model.ITEM,
        ("query", "item"),
        ("count",),
    ),
    LinkPart(
        "query_terms",
        "ingest/merge_query_terms",
        "ingest/create_query_terms",
        model.QUERY,
        model.HAS_TERM,
        model.TERM,
        ("query", "term"),
    ),
    LinkPart(
        "item_terms",
        "ingest/merge_item_terms",
        "ingest/create_item_terms",
        model.ITEM,
        model.HAS_TERM,
        model.TERM,
        ("item", "term"),
    ),
    LinkPart(
        "item_categories",
        "ingest/merge_item_categories",
        "ingest/create_item_categories",
        model.ITEM,
        model.IN_CATEGORY,
        model.CATEGORY,
        ("item", "category"),
    ),
)


def link_parts() -> tuple[LinkPart, ...]:
    """The item/query link parts (LED_TO, HAS_TERM, IN_CATEGORY), in write order."""
    return _LINK_PARTS


def interaction_part(rel_type: str) -> LinkPart:
    """The part of one interaction type (SEARCHED targets queries, the others items)."""
    if rel_type == model.SEARCHED:
        return LinkPart(
            rel_type,
            "ingest/merge_searches",
            "ingest/create_searches",
            model.USER,
            rel_type,
            model.QUERY,
            ("user", "target"),
            INTERACTION_PROPS,
        )
    if rel_type not in model.INTERACTIONS:
        raise ValueError(f"unknown interaction type {rel_type!r}")
    return LinkPart(
        rel_type,
        "ingest/merge_interactions",
        "ingest/create_interactions",
        model.USER,
        rel_type,
        model.ITEM,
        ("user", "target"),
        INTERACTION_PROPS,
        typed=True,
    )


#: Every relationship part's name (the keys of ``LoadSummary.written`` that count links).
RELATIONSHIP_PARTS = (
    model.SEARCHED,
    *model.INTERACTIONS,
    *(p.part for p in _LINK_PARTS),
)
#: Every node part's name.
NODE_PARTS = tuple(p.part for p in NODE_PART_SPECS)
