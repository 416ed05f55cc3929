"""Personalized item recommendations and query suggestions."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import DriverDep, RecommenderDep, SettingsDep
from api.errors import ApiError, responses
from api.schemas import (
    QuerySuggestion,
    QuerySuggestions,
    Recommendations,
    RecommendationsQuery,
)
from api.security import ReadKey
from api.serve import Ask, recommend
from dpgcn.settings import get_settings
from graphstore import serving
from graphstore.errors import GraphStoreError, GraphUnavailableError
from graphstore.ids import ID_PATTERN, MAX_ID_LENGTH

router = APIRouter(
    prefix="/v1/users",
    tags=["recommendations"],
    dependencies=[ReadKey],
    responses=responses(401, 403, 422, 503),
)

UserId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, examples=["u7"])
]


@router.get("/{user_id}/recommendations", response_model=Recommendations, responses=responses(404))
async def recommend_items(
    user_id: UserId,
    request: Request,
    query: Annotated[RecommendationsQuery, Query()],
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
    it holds the user: a per-user top-N list and its explanations, computed from memory once
    and cached (no Neo4j read); answers never mix versions, and events, consent changes and
    erasures are honoured from the next request on (api/serve.py).
    """
    settings = get_settings()
    if query.k > settings.api.max_k:
        raise ApiError(422, f"k must be at most {settings.api.max_k}")
    # The recommender straight from the app's state: a dependency would cost FastAPI's
    # resolver a thread-pool hop per request for nothing.
    body = await recommend(
        request.app.state.recommender,
        settings.neo4j.database,
        Ask(user_id, **query.model_dump()),
    )
    # serialized once by pydantic-core (no second validation of the response)
    return Response(body.model_dump_json(), media_type="application/json")


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
    embedding or with personalization off get the most searched queries. The user's vector
    comes from the serving snapshot when it holds the user unchanged, else from the graph."""
    db = settings.neo4j.database
    norm = _SPACES.sub(" ", prefix.lower()).lstrip() if prefix else ""
    active = recommender.active()
    found: list[tuple[str, str, float]] | None = None
    personalized = False
    if active is not None:
        vector = recommender.snapshot_vector(active, user_id)
        if vector is None:
            state = serving.get_user_state(driver, user_id, active, db)
            vector = state.vector if state.exists and state.consent else None
        if vector is not None:
            try:
                found = serving.get_query_suggestions(
                    driver, active, vector, k, norm or None, database=db
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
