"""Item-to-item similarity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import DriverDep, RecommenderDep, SettingsDep
from api.errors import ApiError, responses
from api.schemas import ScoredItem, SimilarItems
from api.security import ReadKey
from graphstore import serving
from graphstore.ids import ID_PATTERN, MAX_ID_LENGTH

router = APIRouter(
    prefix="/v1/items",
    tags=["items"],
    dependencies=[ReadKey],
    responses=responses(401, 403, 404, 422, 503),
)


@router.get("/{item_id}/similar", response_model=SimilarItems)
def similar_items(
    item_id: Annotated[
        str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, examples=["i42"])
    ],
    driver: DriverDep,
    recommender: RecommenderDep,
    settings: SettingsDep,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> SimilarItems:
    """Nearest items by embedding (the active version's vector index)."""
    active = recommender.active()
    if active is None:
        raise ApiError(503, "no model version is active yet")
    found = serving.get_similar_items(driver, item_id, k, active, settings.neo4j.database)
    if found is None:
        raise ApiError(404, f"unknown item {item_id!r}")
    return SimilarItems(
        item_id=item_id,
        model_version=active.version,
        items=[ScoredItem(item_id=i, title=t, score=s) for i, t, s in found],
    )
