"""Personalized item recommendations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import DriverDep, RecommenderDep, SettingsDep
from api.errors import ApiError
from api.schemas import Recommendations, ScoredItem
from graphstore import serving

router = APIRouter(prefix="/v1/users", tags=["recommendations"])

UserId = Annotated[str, Path(min_length=1, max_length=128, examples=["u7"])]


@router.get("/{user_id}/recommendations", response_model=Recommendations)
def recommend_items(
    user_id: UserId,
    driver: DriverDep,
    recommender: RecommenderDep,
    settings: SettingsDep,
    k: Annotated[int, Query(ge=1, le=100, description="How many items")] = 10,
    exclude_seen: Annotated[bool, Query(description="Leave out items the user has seen")] = True,
) -> Recommendations:
    """Top-k items for the user from the active model version's embeddings in Neo4j."""
    if k > settings.api.max_k:
        raise ApiError(422, f"k must be at most {settings.api.max_k}")
    db = settings.neo4j.database
    active = recommender.active()
    if active is not None:
        state = serving.get_user_state(driver, user_id, active, db)
        if state.exists and state.consent and state.vector is not None:
            index = recommender.index(active)
            exclude = state.seen if exclude_seen else frozenset()
            items = recommender.top_k(state.vector, index, k, exclude)
            return Recommendations(
                user_id=user_id,
                model_version=active.version,
                personalized=True,
                items=[ScoredItem(item_id=i, title=t, score=s) for i, t, s in items],
            )
    popular = serving.get_popular_items(driver, k, db)
    return Recommendations(
        user_id=user_id,
        model_version=active.version if active else None,
        personalized=False,
        items=[ScoredItem(item_id=i, title=t, score=s) for i, t, s in popular],
    )
