"""Recommend: one path from a parsed request to the answer model, for every caller.

1. **From the snapshot** (:mod:`api.snapshot`), for a user it holds who has not changed since
   it was loaded: the user's top-N list (N = ``max(k, TOP_N)``) is looked up in the
   snapshot's bounded LRU cache by ``(user, exclude_seen, category, policy version)``, else
   ranked by the scorer's next batch and cached. The explanations of the items shown are
   computed from in-memory data (:mod:`api.explain`) the first time they are asked for, and
   cached with the list (:data:`TopN`: plain tuples, out of the garbage collector's way).
   No Neo4j read.
2. **From the graph**, for everyone else (not in the snapshot, changed since — events,
   consent, erasure — or no snapshot): the user's state read from Neo4j as it is now, ranked by
   the same :func:`api.scoring.rank`, explained from in-memory data when personalized.

A cached list is used only while the user is unchanged (api/changes.py): a change posted to
this process is honoured by its next request; one posted to another process within
:data:`api.changes.STALE_S` (1 s; typically :data:`api.changes.SYNC_S`, 0.1 s: the stream is
read in the background, and while it cannot be read no cached list is used and the graph
answers). The cache goes with its snapshot: a new
version, refreshed items or a restored store drop it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from fastapi.concurrency import run_in_threadpool

from api import metrics
from api.errors import ApiError
from api.explain import describe, explain_rows
from api.recommender import LoadedPolicy, Recommender
from api.schemas import Explanation, Recommendations, ScoredItem, Strategy
from api.scoring import Want, rank, seen_arrays
from api.snapshot import ItemIndex, Profile, Snapshot
from graphstore import serving
from graphstore.model import SLOTS
from graphstore.serving import Scored, UserState
from graphstore.writeback import ActiveModel

#: The shortest top-N list cached per user (a request for more ranks and caches that many).
TOP_N = 20
#: How many nearest users (by static features) make a cold-start vector (the paper's k-NN).
COLD_START_NEIGHBOURS = 10


@dataclass(frozen=True)
class Ask:
    """A validated recommendations request."""

    user_id: str
    k: int = 10
    exclude_seen: bool = True
    category: str | None = None
    explain: bool = True
    age: int | None = None
    gender: str | None = None
    occupation: str | None = None


#: What an explanation shows: ``(kind, text, via)`` of :class:`api.schemas.Explanation`.
Said = tuple[str, str, tuple[str, ...]]
#: A cached top-N list: ``(rows, scores, complete, strategy, policy version, said)`` — item
#: rows and scores best first (NumPy arrays), whether it holds every item there is (then it
#: serves any k), and the explanations of its first ``len(said)`` items. A plain tuple of
#: arrays, strings and numbers: the cyclic garbage collector stops tracking such a tuple
#: (``gc.is_tracked``), so a cache of tens of thousands of lists adds nothing to the
#: collector's full passes, which stop every request while they walk the tracked objects.
TopN = tuple[np.ndarray, np.ndarray, bool, str, int | None, tuple[Said, ...]]


async def recommend(recommender: Recommender, database: str, ask: Ask) -> Recommendations:
    """The answer to ``ask`` (see the module docstring)."""
    found = await _from_snapshot(recommender, ask)
    if found is not None:
        return found
    metrics.cache_event("snapshot", False)
    return await run_in_threadpool(_from_graph, recommender, database, ask)


async def _from_snapshot(recommender: Recommender, ask: Ask) -> Recommendations | None:
    scorer = recommender.scorer
    if scorer is None:
        return None
    snap = scorer.snapshot
    if not scorer.holds(snap, ask.user_id) or snap is None:
        return None
    # (a new policy of the version is a new key: lists ranked with the old one age out)
    policy_version, _ = recommender.snapshot_policy(snap.version)
    key = (ask.user_id, ask.exclude_seen, ask.category, policy_version)
    top: TopN | None = snap.toplists.get(key) if recommender.changes.fresh() else None
    owner = snap
    if top is None or (len(top[0]) < ask.k and not top[2]):
        metrics.cache_event("toplist", False)
        depth = max(ask.k, TOP_N)
        answer = await scorer.submit(ask.user_id, depth, ask.exclude_seen, ask.category)
        if answer is None or answer.snapshot is None:
            return None
        owner = answer.snapshot
        top = (
            answer.rows,
            answer.scores,
            len(answer.rows) < depth,
            answer.strategy,
            answer.policy_version,
            (),
        )
        key = (ask.user_id, ask.exclude_seen, ask.category, answer.policy_version)
        owner.toplists[key] = top
    else:
        metrics.cache_event("toplist", True)
    metrics.cache_event("snapshot", True)
    rows, scores, complete, ranked_by, ranked_policy, said = top
    strategy: Strategy = "policy" if ranked_by == "policy" else "embedding"
    metrics.child(metrics.RECOMMENDATIONS, strategy).inc()
    shown = rows[: ask.k].tolist()
    items = owner.items
    explanations: list[Said] | None = None
    if ask.explain:
        if len(said) < len(shown):  # explained once, for the items shown, then cached
            profile = owner.profile(owner.user_pos[ask.user_id])
            found = explain_rows(items, owner.links, owner.segment_buys, profile, shown)
            said = tuple(
                to_said(describe(i, found.get(i), strategy)) for i in (items.ids[r] for r in shown)
            )
            owner.toplists[key] = (rows, scores, complete, ranked_by, ranked_policy, said)
        explanations = list(said[: len(shown)])
    scored = [
        (items.ids[r], items.titles[r], s)
        for r, s in zip(shown, scores[: ask.k].tolist(), strict=True)
    ]
    return answer_model(
        ask, owner.version, strategy, ranked_policy, scored, explanations, known_user=True
    )


def to_said(e: Explanation) -> Said:
    """What ``e`` shows, as a plain tuple (cacheable out of the collector's way)."""
    return (e.kind, e.text, tuple(e.via))


def answer_model(
    ask: Ask,
    version: str | None,
    strategy: Strategy,
    policy_version: int | None,
    items: list[Scored],
    explanations: list[Said] | None,
    known_user: bool,
) -> Recommendations:
    """The response: ``items`` with ``explanations[n]`` for ``items[n]`` (None: not asked)."""
    shown: list[Explanation | None] = (
        [None] * len(items)
        if explanations is None
        else [Explanation(kind=k, text=t, via=list(v)) for k, t, v in explanations]  # type: ignore[arg-type]
    )
    return Recommendations(
        user_id=ask.user_id,
        model_version=version,
        personalized=strategy in ("policy", "embedding"),
        known_user=known_user,
        strategy=strategy,
        policy_version=policy_version,
        category=ask.category,
        items=[
            ScoredItem(item_id=i, title=t, score=s, explanation=e)
            for (i, t, s), e in zip(items, shown, strict=True)
        ],
    )


def _from_graph(recommender: Recommender, database: str, ask: Ask) -> Recommendations:
    """The user's state read from the graph as it is now."""
    driver = recommender.driver
    active = recommender.active()
    index: ItemIndex | None = None
    rows: np.ndarray | None = None
    if active is not None:
        state = serving.get_user_state(driver, ask.user_id, active, database)
        index = recommender.index(active)
        if ask.category is not None:
            rows = recommender.category_rows(index, ask.category)
            if rows is None:
                raise ApiError(404, f"unknown category {ask.category!r}")
    else:
        if (
            ask.category is not None
            and serving.get_category_items(driver, ask.category, database) is None
        ):
            raise ApiError(404, f"unknown category {ask.category!r}")
        # no active version: the user's state of none (only whether the user exists is used)
        state = serving.get_user_state(driver, ask.user_id, _NO_VERSION, database)
    known_user = state.exists
    exclude = state.seen if (ask.exclude_seen and state.consent) else frozenset()

    strategy: Strategy = "popular"
    policy: LoadedPolicy | None = None
    items: list[Scored] = []
    explanations: dict[str, serving.Explanation] | None = None
    if active is not None and index is not None and state.consent:
        seen_rows = [index.position[i] for i in state.recent if i in index.position]
        want = Want(ask.k, ask.exclude_seen, rows)
        dim = index.matrix.shape[1]
        if state.exists and state.vector is not None and state.vector.shape[0] == dim:
            policy = recommender.policy(active)
            adjuster = policy.adjuster if policy is not None else None
            strategy = "policy" if adjuster is not None else "embedding"
            policy = policy if adjuster is not None else None
            ((top, scores),) = rank(
                index, state.vector[None], [want], seen_arrays([seen_rows]), adjuster
            )
            items = _scored(index, top, scores)
            if ask.explain:
                explanations = _explain_personal(recommender, index, state, top.tolist())
        else:
            cold = _cold_start_vector(recommender, active, state, ask, database)
            if cold is not None:
                strategy = "cold_start_features"
                ((top, scores),) = rank(index, cold[None], [want], seen_arrays([seen_rows]), None)
                items = _scored(index, top, scores)
            elif state.segment is not None and ask.category is None:
                strategy = "segment"
                items = recommender.segment_items(state.segment, ask.k, exclude)
    if strategy == "popular":
        items = recommender.popular_items(ask.k, exclude, ask.category)
    metrics.child(metrics.RECOMMENDATIONS, strategy).inc()
    if ask.explain and explanations is None and items:
        # non-personalized answers: their evidence (segment buyers, purchases) from the graph
        who = ask.user_id if strategy == "segment" else None
        explanations = serving.get_explanations(
            driver, who, [i for i, _, _ in items], active.version if active else None, database
        )
    evidence = explanations or {}
    said = (
        [to_said(describe(i, evidence.get(i), strategy)) for i, _, _ in items]
        if ask.explain
        else None
    )
    return answer_model(
        ask,
        active.version if active else None,
        strategy,
        policy.version if policy else None,
        items,
        said,
        known_user,
    )


def _scored(index: ItemIndex, rows: np.ndarray, scores: np.ndarray) -> list[Scored]:
    return [
        (index.ids[r], index.titles[r], float(s))
        for r, s in zip(rows.tolist(), scores.tolist(), strict=True)
    ]


def _explain_personal(
    recommender: Recommender, index: ItemIndex, state: UserState, rows: list[int]
) -> dict[str, serving.Explanation]:
    """In-memory explanations for a user read from the graph: the user's profile from the
    state just read, the query links and segment purchases from the snapshot of the version
    (none without one: then only category and taste evidence)."""
    snap: Snapshot | None = recommender.snapshot
    same = snap is not None and snap.version == index.version
    position = index.position
    kept = [
        (position[i], h) for i, h in zip(state.recent, state.how, strict=False) if i in position
    ]
    profile = Profile(
        seen=[r for r, _ in kept],
        how=[h for _, h in kept],
        bought=frozenset(position[i] for i in state.bought if i in position),
        searches=state.searches,
        segment=state.segment,
    )
    return explain_rows(
        index,
        snap.links if same and snap is not None else {},
        snap.segment_buys if same and snap is not None else {},
        profile,
        rows,
    )


#: Stands for "no active version" in a user-state read (no user's vector is tagged with it).
_NO_VERSION = ActiveModel(version="", slot=SLOTS[0], dim=0, model_name="", metrics={})


def _cold_start_vector(
    recommender: Recommender, active: ActiveModel, state: UserState, ask: Ask, database: str
) -> np.ndarray | None:
    """The mean vector of the nearest users by static features (parameters override what the
    user node stores); None without complete features or neighbours."""
    age = ask.age if ask.age is not None else state.age
    gender = ask.gender or state.gender
    occupation = ask.occupation or state.occupation
    if age is None or gender is None or occupation is None:
        return None
    vecs = serving.get_feature_neighbours(
        recommender.driver,
        active,
        occupation=occupation,
        gender=gender,
        age=age,
        k=COLD_START_NEIGHBOURS,
        database=database,
    )
    if len(vecs) == 0 or vecs.shape[1] != active.dim:
        return None
    return np.asarray(vecs.mean(0), dtype=np.float32)
