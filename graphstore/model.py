"""The graph's vocabulary: every node label and relationship type the product uses.

Labels and types are only ever taken from these constants (a whitelist); nothing builds one
from user input. See ``docs/graph-model.md``.
"""

from __future__ import annotations

from typing import Final

USER: Final = "User"
ITEM: Final = "Item"
QUERY: Final = "Query"
TERM: Final = "Term"
CATEGORY: Final = "Category"
SEGMENT: Final = "Segment"  # a segment of the active model version (graphstore.segments)
#: A segment of any other version: older ones kept for rollback and a new version's segments
#: before its activation. Same properties as SEGMENT; activation swaps the two labels.
ARCHIVED_SEGMENT: Final = "ArchivedSegment"
MODEL: Final = "Model"
EVENT: Final = "Event"  # (:Event {id, user_id, type, item_id, query, ts}), graphstore.events
API_KEY: Final = "ApiKey"  # (:ApiKey {id, hash, scope, created_at, revoked}), graphstore.apikeys
POLICY: Final = "Policy"  # (:Policy {model_version, version, actor, …}), graphstore.policies
#: Tombstone of an erased user: only a salted hash of the id (graphstore.users), so events
#: that arrive after the erasure cannot re-create the user.
ERASED_USER: Final = "ErasedUser"  # (:ErasedUser {id_hash, erased_at})
#: The one node holding the random salt of those hashes (created by the first erasure).
ERASURE_SALT: Final = "ErasureSalt"  # (:ErasureSalt {id: 'erasure', value, created_at})

NODE_LABELS: Final = (USER, ITEM, QUERY, TERM, CATEGORY)

SEARCHED: Final = "SEARCHED"  # (:User)-[:SEARCHED {ts, count}]->(:Query)
VIEWED: Final = "VIEWED"  # (:User)-[:VIEWED {ts, count}]->(:Item)
CLICKED: Final = "CLICKED"  # (:User)-[:CLICKED {ts, count}]->(:Item)
PURCHASED: Final = "PURCHASED"  # (:User)-[:PURCHASED {ts, count}]->(:Item)
RATED: Final = "RATED"  # (:User)-[:RATED {ts, rating}]->(:Item)
LED_TO: Final = "LED_TO"  # (:Query)-[:LED_TO {count}]->(:Item)
HAS_TERM: Final = "HAS_TERM"  # (:Query|:Item)-[:HAS_TERM]->(:Term)
IN_CATEGORY: Final = "IN_CATEGORY"  # (:Item)-[:IN_CATEGORY]->(:Category)
SUBCATEGORY_OF: Final = "SUBCATEGORY_OF"  # (:Category)-[:SUBCATEGORY_OF]->(:Category)
POLICY_OF: Final = "POLICY_OF"  # (:Policy)-[:POLICY_OF]->(:Model)

#: Market segments of a model version (graphstore.segments), kept out of EDGE_TYPES: they are
#: derived from the embeddings, never exported for training.
IN_SEGMENT: Final = "IN_SEGMENT"  # (:User)-[:IN_SEGMENT {score}]->(:Segment)
AFFINITY: Final = "AFFINITY"  # (:Segment)-[:AFFINITY {lift, count}]->(:Category|:Term)
SEGMENT_EDGE_TYPES: Final = (
    (USER, IN_SEGMENT, SEGMENT),
    (SEGMENT, AFFINITY, CATEGORY),
    (SEGMENT, AFFINITY, TERM),
)
#: Labels a segment's AFFINITY relationships point at.
AFFINITY_LABELS: Final = (CATEGORY, TERM)

#: User → item interaction types, weakest to strongest signal.
INTERACTIONS: Final = (VIEWED, CLICKED, RATED, PURCHASED)

#: (source label, type, target label) of every relationship the store holds.
EDGE_TYPES: Final = (
    (USER, SEARCHED, QUERY),
    (USER, VIEWED, ITEM),
    (USER, CLICKED, ITEM),
    (USER, PURCHASED, ITEM),
    (USER, RATED, ITEM),
    (QUERY, LED_TO, ITEM),
    (QUERY, HAS_TERM, TERM),
    (ITEM, HAS_TERM, TERM),
    (ITEM, IN_CATEGORY, CATEGORY),
    (CATEGORY, SUBCATEGORY_OF, CATEGORY),
)

#: Labels that receive embeddings, and the two slots a version is written to. A new version
#: always goes to the slot the active version does not use, so readers of the active version
#: are never disturbed (see graphstore.writeback).
EMBEDDED_LABELS: Final = (USER, ITEM, QUERY)
SLOTS: Final = ("a", "b")


def embedding_property(slot: str) -> str:
    if slot not in SLOTS:
        raise ValueError(f"unknown embedding slot {slot!r}")
    return f"embedding_{slot}"


def vector_index_name(label: str, slot: str) -> str:
    if label not in EMBEDDED_LABELS or slot not in SLOTS:
        raise ValueError(f"no vector index for {label!r}/{slot!r}")
    return f"{label.lower()}_embedding_{slot}"
