"""Personalized item recommendations and query suggestions."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import RecommenderDep, SettingsDep
from api.errors import ApiError, responses
from api.nearest import suggest_queries as suggest
from api.schemas import QuerySuggestions, Recommendations, RecommendationsQuery
from api.security import ReadKey
from api.serve import Ask, recommend
from dpgcn.settings import get_settings
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
async def suggest_queries(
    user_id: UserId,
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
) -> Response:
    """Search queries for the user: the queries nearest to the user's vector in the active
    version by cosine (score ``(1 + cosine) / 2``; Query embeddings are written back with each
    version); with ``prefix``, the queries whose text starts with it, ranked by the same
    similarity. Users without an embedding or with personalization off get the most searched
    queries. Ranked from the API's in-memory query vectors (api/nearest.py); the user's vector
    comes from the serving snapshot when it holds the user unchanged, else from the graph."""
    norm = _SPACES.sub(" ", prefix.lower()).lstrip() if prefix else ""
    body = await suggest(recommender, settings.neo4j.database, user_id, k, norm)
    return Response(body.model_dump_json(), media_type="application/json")
