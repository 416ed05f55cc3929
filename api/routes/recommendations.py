"""Personalized item recommendations and query suggestions."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl

import numpy as np
import pydantic_core
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from neo4j import Driver

from api import metrics
from api.deps import DriverDep, RecommenderDep, SettingsDep
from api.errors import ApiError, responses
from api.recommender import ItemIndex, LoadedPolicy, Recommender
from api.schemas import (
    Explanation,
    QuerySuggestion,
    QuerySuggestions,
    Recommendations,
    ScoredItem,
    Strategy,
)
from api.security import KeyCache, ReadKey, check_cached
from api.snapshot import Answer
from dpgcn.settings import get_settings
from graphstore import serving
from graphstore.apikeys import StoredKey
from graphstore.errors import GraphStoreError, GraphUnavailableError
from graphstore.ids import ID_PATTERN, MAX_ID_LENGTH, is_valid_id
from graphstore.model import SLOTS
from graphstore.serving import Scored, UserState
from graphstore.writeback import ActiveModel

router = APIRouter(
    prefix="/v1/users",
    tags=["recommendations"],
    dependencies=[ReadKey],
    responses=responses(401, 403, 422, 503),
)

UserId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, examples=["u7"])
]
#: How many nearest users (by static features) make a cold-start vector (the paper's k-NN).
COLD_START_NEIGHBOURS = 10

_HOW = {"PURCHASED": "bought", "CLICKED": "clicked", "VIEWED": "viewed", "RATED": "rated"}


async def recommend_items(
    user_id: UserId,
    request: Request,
    k: Annotated[int, Query(ge=1, le=100, description="How many items")] = 10,
    exclude_seen: Annotated[bool, Query(description="Leave out items the user has seen")] = True,
    category: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=128,
            description="Only items in this category or its subcategories (404 if unknown)",
        ),
    ] = None,
    explain: Annotated[bool, Query(description="Add a graph explanation to each item")] = True,
    age: Annotated[
        int | None, Query(ge=0, le=120, description="Cold start: the user's age")
    ] = None,
    gender: Annotated[
        str | None, Query(min_length=1, max_length=32, description="Cold start: gender")
    ] = None,
    occupation: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Cold start: occupation")
    ] = None,
) -> Response:
    """Top-k items for the user from the active model version, each with an explanation.

    * Known user with an embedding and personalization on: the user's vector, adjusted by
      the newest DDPG policy of the model version from the user's recent items
      (``strategy: policy``; ``embedding`` when the model has no usable policy), scored
      against the item matrix.
    * No embedding yet: the mean vector of the users nearest in age/gender/occupation (stored
      on the user node, or given as query parameters) — ``cold_start_features``.
    * No features but a segment (``graphstore.segments``) of the active version: the items
      most popular in that segment — ``segment``.
    * Otherwise (unknown user, no features, personalization off): the most popular items —
      ``popular``. These answers have ``personalized: false``; none of them is an error.

    Personalized answers come from the API's in-memory snapshot of the model version when
    it holds the user (no Neo4j read unless ``explain``); answers never mix versions, and
    events, consent changes and erasures are honoured from the next request on.
    """
    # The app's objects straight from its state, not through dependencies: each dependency
    # costs FastAPI's resolver a measurable share of a request (docs/benchmarks-api.md).
    settings = get_settings()
    if k > settings.api.max_k:
        raise ApiError(422, f"k must be at most {settings.api.max_k}")
    return await _respond(
        request, user_id, k, exclude_seen, category, explain, age, gender, occupation
    )


async def _respond(
    request: Request,
    user_id: str,
    k: int,
    exclude_seen: bool,
    category: str | None,
    explain: bool,
    age: int | None = None,
    gender: str | None = None,
    occupation: str | None = None,
) -> Response:
    """The answer to validated parameters: from the snapshot, else through the Neo4j path."""
    settings = get_settings()
    answered = await _from_snapshot(request, user_id, k, exclude_seen, category, explain)
    if answered is not None:
        return answered
    metrics.cache_event("snapshot", False)
    body = await run_in_threadpool(
        _recommend_from_graph,
        user_id,
        request.app.state.driver,
        request.app.state.recommender,
        settings.neo4j.database,
        k,
        exclude_seen,
        category,
        explain,
        age,
        gender,
        occupation,
    )
    return _json(body)


async def _from_snapshot(
    request: Request,
    user_id: str,
    k: int,
    exclude_seen: bool,
    category: str | None,
    explain: bool,
) -> Response | None:
    """The answer from the serving snapshot, or None when the Neo4j path must answer."""
    recommender: Recommender = request.app.state.recommender
    if recommender.scorer is None:
        return None
    answer = await recommender.scorer.submit(user_id, k, exclude_seen, category)
    if answer is None:
        return None
    strategy = _counted(answer)
    explanations: dict[str, serving.Explanation] = {}
    if explain and answer.items:
        explanations = await run_in_threadpool(
            serving.get_explanations,
            request.app.state.driver,
            user_id,
            [i for i, _, _ in answer.items],
            answer.version,
            get_settings().neo4j.database,
        )
    return _json(
        _answer(
            user_id,
            answer.version,
            strategy,
            answer.policy_version,
            category,
            answer.items,
            explanations if explain else None,
        )
    )


# ------------------------------------------------------------------------ the fast path

#: Query strings the fast path decides itself: ``k`` as plain digits and the two booleans in
#: their usual spellings (pydantic accepts more; anything else takes the validated path).
_DIGITS = re.compile(r"[1-9][0-9]{0,2}")
_BOOLS = {"true": True, "1": True, "false": False, "0": False}
_SLOW_PARAMS = frozenset({"age", "gender", "occupation"})


#: Query strings already decided by :func:`_fast_params` (clients repeat a few), per ``max_k``.
_PARAMS_SEEN: dict[tuple[bytes, int], tuple[int, bool, str | None, bool] | None] = {}


def _fast_params_of(query: bytes) -> tuple[int, bool, str | None, bool] | None:
    """:func:`_fast_params`, remembered for the first 1,024 distinct query strings."""
    key = (query, get_settings().api.max_k)
    try:
        return _PARAMS_SEEN[key]
    except KeyError:
        params = _fast_params(query)
        if len(_PARAMS_SEEN) < 1024:
            _PARAMS_SEEN[key] = params
        return params


def _fast_params(query: bytes) -> tuple[int, bool, str | None, bool] | None:
    """``(k, exclude_seen, category, explain)`` when the query string is plainly valid for
    :func:`recommend_items` (same defaults and limits), else None."""
    k, exclude_seen, category, explain = 10, True, None, True
    seen: set[str] = set()
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name in seen:  # repeated: leave the choice of value to FastAPI
            return None
        seen.add(name)
        if name == "k":
            if not _DIGITS.fullmatch(value) or int(value) > min(100, get_settings().api.max_k):
                return None
            k = int(value)
        elif name == "exclude_seen" or name == "explain":
            flag = _BOOLS.get(value.lower())
            if flag is None:
                return None
            if name == "explain":
                explain = flag
            else:
                exclude_seen = flag
        elif name == "category":
            if not 1 <= len(value) <= 128:
                return None
            category = value
        elif name in _SLOW_PARAMS:
            return None  # cold-start features: validated and used by the full route
    return k, exclude_seen, category, explain


class FastRecommendationsRoute(APIRoute):
    """The recommendations route with a fast path in front of FastAPI's request handling.

    FastAPI resolves the key dependency and validates nine parameters one by one for every
    request (in the ASGI profile, about half of the framework's time per request). The fast
    path answers the common request — a key the cache can decide, plainly valid parameters —
    with the same checks, the same answer and the same bytes, and hands everything else (key
    not cached, unusual or invalid parameters, cold-start features) to the route as FastAPI
    runs it, which validates, documents (OpenAPI) and answers as before. Both end in
    :func:`_respond` (snapshot, else the Neo4j path). Errors raised here (401, 403, 404, 503)
    go through the app's exception handlers like the route's.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        validated = super().get_route_handler()

        async def handle(request: Request) -> Response:
            answer = await _fast(request)
            return answer if answer is not None else await validated(request)

        return handle


async def _fast(request: Request) -> Response | None:
    user_id = request.scope["path_params"]["user_id"]
    decided = _plain_request(request.app.state.keys, request.scope, user_id)
    if decided is None:
        return None
    stored, params = decided
    request.state.key_id = stored.id
    return await _respond(request, user_id, *params)


def _plain_request(
    keys: KeyCache, scope: Mapping[str, Any], user_id: str
) -> tuple[StoredKey, tuple[int, bool, str | None, bool]] | None:
    """The key's record and ``(k, exclude_seen, category, explain)`` when both fast paths
    may answer the request without FastAPI's validation: a key the cache decides alone and
    plainly valid parameters; None otherwise. A key the cache refuses raises 401/403."""
    key = next((v for n, v in scope["headers"] if n == b"x-api-key"), None)
    stored = check_cached(keys, key.decode("latin-1") if key is not None else None, "read")
    if stored is None:
        return None
    params = _fast_params_of(scope["query_string"])
    if params is None or not is_valid_id(user_id):
        return None
    return stored, params


#: The recommendations route's template, as metrics and access logs name it.
ROUTE = "/v1/users/{user_id}/recommendations"
_PREFIX, _SUFFIX = "/v1/users/", "/recommendations"


async def answer_direct(app: Any, scope: dict[str, Any]) -> bytes | None:
    """The JSON body of the answer to the commonest request — a plain ``GET`` of this route
    with a key the cache admits, plainly valid parameters, ``explain=false`` and a user the
    snapshot holds — computed before FastAPI's middleware and routing run; None for every
    other request, which the app's full stack then answers exactly as before (a key the
    cache cannot decide or refuses, an unusual parameter, ``explain=true``, a user the
    snapshot does not hold, a failed scoring batch). Does nothing a refusal would undo.

    The body is byte-identical to the validated route's (``pydantic_core.to_json`` is the
    serializer ``model_dump_json`` uses; ``tests/unit/test_api_units.py``). Why it exists:
    FastAPI's seven middleware layers, routing and request objects cost about as much
    interpreter time as the whole answer (docs/benchmarks-api.md), and under load the
    process is bound by that one interpreter lock."""
    path = scope["path"]
    if (
        scope["method"] != "GET"
        or not path.startswith(_PREFIX)
        or not path.endswith(_SUFFIX)
        or scope.get("root_path")
        or b"%" in scope.get("raw_path", b"")  # escapes: the full stack decides (api/guard.py)
    ):
        return None
    user_id = path[len(_PREFIX) : -len(_SUFFIX)]
    keys = getattr(app.state, "keys", None)
    if "/" in user_id or keys is None:
        return None
    try:
        decided = _plain_request(keys, scope, user_id)
    except ApiError:  # 401/403: the full stack answers them
        return None
    if decided is None or decided[1][3]:  # (explanations: the route's fast path)
        return None
    k, exclude_seen, category, _ = decided[1]
    scorer = getattr(getattr(app.state, "recommender", None), "scorer", None)
    if scorer is None:  # no snapshot (or the lifespan has not run)
        return None
    try:
        answer = await scorer.submit(user_id, k, exclude_seen, category)
    except Exception:  # logged by the scorer; the full stack tries again and answers
        return None
    if answer is None:
        return None
    return direct_body(user_id, answer, _counted(answer), category)


def _counted(answer: Answer) -> Strategy:
    """The strategy of a snapshot answer, counted in the metrics."""
    metrics.cache_event("snapshot", True)
    strategy: Strategy = "policy" if answer.strategy == "policy" else "embedding"
    metrics.child(metrics.RECOMMENDATIONS, strategy).inc()
    return strategy


def direct_body(user_id: str, answer: Answer, strategy: Strategy, category: str | None) -> bytes:
    """``_answer(...).model_dump_json()`` of a personalized answer without explanations, the
    same bytes without building the models: the head by ``pydantic_core.to_json`` (the
    serializer ``model_dump_json`` uses) in the models' field order, the items from the
    snapshot's encoded items (:meth:`api.snapshot.Answer.items_json`)."""
    head = pydantic_core.to_json(
        {
            "user_id": user_id,
            "model_version": answer.version,
            "personalized": True,
            "known_user": True,
            "strategy": strategy,
            "policy_version": answer.policy_version,
            "category": category,
        }
    )
    return head[:-1] + b',"items":' + answer.items_json() + b"}"


router.add_api_route(
    "/{user_id}/recommendations",
    recommend_items,
    methods=["GET"],
    response_model=Recommendations,
    responses=responses(404),
    route_class_override=FastRecommendationsRoute,
)


def _json(body: Recommendations) -> Response:
    """The answer serialized once by pydantic-core (no second validation of the response)."""
    return Response(body.model_dump_json(), media_type="application/json")


def _answer(
    user_id: str,
    version: str | None,
    strategy: Strategy,
    policy_version: int | None,
    category: str | None,
    items: list[Scored],
    explanations: dict[str, serving.Explanation] | None,
    known_user: bool = True,
) -> Recommendations:
    return Recommendations(
        user_id=user_id,
        model_version=version,
        personalized=strategy in ("policy", "embedding"),
        known_user=known_user,
        strategy=strategy,
        policy_version=policy_version,
        category=category,
        items=[
            ScoredItem(
                item_id=i,
                title=t,
                score=s,
                explanation=(
                    None if explanations is None else _explain(i, explanations.get(i), strategy)
                ),
            )
            for i, t, s in items
        ],
    )


def _recommend_from_graph(
    user_id: str,
    driver: Driver,
    recommender: Recommender,
    db: str,
    k: int,
    exclude_seen: bool,
    category: str | None,
    explain: bool,
    age: int | None,
    gender: str | None,
    occupation: str | None,
) -> Recommendations:
    """The Neo4j path: the user's state read from the graph as it is now."""
    active = recommender.active()
    state: UserState | None = None
    index: ItemIndex | None = None
    rows: np.ndarray | None = None
    if active is not None:
        state = serving.get_user_state(driver, user_id, active, db)
        index = recommender.index(active)
        if category is not None:
            rows = recommender.category_rows(index, category)
            if rows is None:
                raise ApiError(404, f"unknown category {category!r}")
    else:
        if category is not None and serving.get_category_items(driver, category, db) is None:
            raise ApiError(404, f"unknown category {category!r}")
        # no active version: the user's state of none (only whether the user exists is used)
        state = serving.get_user_state(driver, user_id, _NO_VERSION, db)
    known_user = state is not None and state.exists
    personal = state is not None and state.exists and state.consent
    exclude = state.seen if (state is not None and exclude_seen and state.consent) else frozenset()

    strategy: Strategy = "popular"
    policy: LoadedPolicy | None = None
    items: list[Scored] = []
    if active is not None and index is not None and state is not None and state.consent:
        if personal and state.vector is not None and state.vector.shape[0] == index.matrix.shape[1]:
            vec = state.vector
            policy = recommender.policy(active)
            if policy is not None and policy.adjuster is not None:
                vec = recommender.adjust(vec, index, policy, state.recent)
                strategy = "policy"
            else:
                policy, strategy = None, "embedding"
            items = recommender.top_k(vec, index, k, exclude, rows)
        else:
            cold = _cold_start_vector(recommender, active, state, age, gender, occupation, db)
            if cold is not None:
                strategy = "cold_start_features"
                items = recommender.top_k(cold, index, k, exclude, rows)
            elif state.segment is not None and category is None:
                strategy = "segment"
                items = recommender.segment_items(state.segment, k, exclude)
    if strategy == "popular":
        items = recommender.popular_items(k, exclude, category)
    metrics.child(metrics.RECOMMENDATIONS, strategy).inc()
    explanations: dict[str, serving.Explanation] = {}
    if explain and items:
        who = user_id if strategy in ("policy", "embedding", "segment") else None
        explanations = serving.get_explanations(
            driver, who, [i for i, _, _ in items], active.version if active else None, db
        )
    return _answer(
        user_id,
        active.version if active else None,
        strategy,
        policy.version if policy else None,
        category,
        items,
        explanations if explain else None,
        known_user,
    )


#: Stands for "no active version" in a user-state read (no user's vector is tagged with it).
_NO_VERSION = ActiveModel(version="", slot=SLOTS[0], dim=0, model_name="", metrics={})


def _cold_start_vector(
    recommender: Recommender,
    active: ActiveModel,
    state: UserState,
    age: int | None,
    gender: str | None,
    occupation: str | None,
    database: str,
) -> np.ndarray | None:
    """The mean vector of the nearest users by static features (parameters override what the
    user node stores); None without complete features or neighbours."""
    age = age if age is not None else state.age
    gender = gender or state.gender
    occupation = occupation or state.occupation
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


def _explain(item_id: str, e: serving.Explanation | None, strategy: Strategy) -> Explanation:
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
        text = f"popular: bought {bought} times" if bought else "popular with shoppers"
        return Explanation(kind="popular", text=text, via=[item_id])
    return Explanation(kind="taste", text="matches your taste profile", via=[item_id])


# ------------------------------------------------------------------------ query suggestions

_SPACES = re.compile(r"\s+")


@router.get("/{user_id}/query-suggestions", response_model=QuerySuggestions)
def suggest_queries(
    user_id: UserId,
    driver: DriverDep,
    recommender: RecommenderDep,
    settings: SettingsDep,
    k: Annotated[int, Query(ge=1, le=50, description="How many queries")] = 10,
    prefix: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Only queries starting with this text (case-insensitive completion)",
            examples=["rac"],
        ),
    ] = None,
) -> QuerySuggestions:
    """Search queries for the user: the queries nearest to the user's vector in the active
    version (Query embeddings are written back with each version); with ``prefix``, prefix
    completion through the query text index ranked by the same similarity. Users without an
    embedding or with personalization off get the most searched queries."""
    db = settings.neo4j.database
    norm = _SPACES.sub(" ", prefix.lower()).lstrip() if prefix else ""
    active = recommender.active()
    found: list[tuple[str, str, float]] | None = None
    personalized = False
    if active is not None:
        state = serving.get_user_state(driver, user_id, active, db)
        if state.exists and state.consent and state.vector is not None:
            try:
                found = serving.get_query_suggestions(
                    driver, active, state.vector, k, norm or None, database=db
                )
                personalized = True
            except GraphUnavailableError:
                raise
            except GraphStoreError:  # this version has no query vectors/index: popular instead
                found = None
    if found is None:
        found = recommender.popular_queries.get(
            norm, lambda: serving.get_popular_queries(driver, 50, norm, db)
        )[:k]
    return QuerySuggestions(
        user_id=user_id,
        model_version=active.version if active else None,
        personalized=personalized,
        prefix=norm or None,
        queries=[QuerySuggestion(query_id=q, text=t, score=s) for q, t, s in found],
    )
