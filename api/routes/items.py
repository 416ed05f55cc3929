"""Item-to-item similarity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import RecommenderDep, SettingsDep
from api.errors import responses
from api.nearest import similar_items as find_similar
from api.schemas import SimilarItems
from api.security import ReadKey
from graphstore.ids import ID_PATTERN, MAX_ID_LENGTH

router = APIRouter(
    prefix="/v1/items",
    tags=["items"],
    dependencies=[ReadKey],
    responses=responses(401, 403, 404, 422, 503),
)


@router.get("/{item_id}/similar", response_model=SimilarItems)
async def similar_items(
    item_id: Annotated[
        str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, examples=["i42"])
    ],
    recommender: RecommenderDep,
    settings: SettingsDep,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Response:
    """Nearest items by cosine of their embeddings in the active version (the item itself left
    out; score ``(1 + cosine) / 2``, as Neo4j's vector index gives it), ranked exactly from the
    API's in-memory item matrix (api/nearest.py). 404 for an unknown item; an item without a
    vector of the version has none."""
    body = await find_similar(recommender, settings.neo4j.database, item_id, k)
    # serialized once by pydantic-core (no second validation of the response)
    return Response(body.model_dump_json(), media_type="application/json")
