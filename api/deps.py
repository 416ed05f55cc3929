"""Dependency aliases for routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from neo4j import Driver

from api.errors import ApiError
from api.recommender import Recommender
from dpgcn.settings import Settings, get_settings
from workers.runs import RunRegistry

# Dependencies are ``async`` when they never block: FastAPI runs a sync dependency in the
# thread pool, one hop per dependency per request.


async def get_driver(request: Request) -> Driver:
    return request.app.state.driver  # type: ignore[no-any-return]


async def get_recommender(request: Request) -> Recommender:
    return request.app.state.recommender  # type: ignore[no-any-return]


async def get_settings_dep() -> Settings:
    return get_settings()


async def get_redis(request: Request) -> Any:
    """The Redis client (feedback stream), or 503 when Redis is not configured."""
    client = request.app.state.redis
    if client is None:
        raise ApiError(503, "Redis is not configured")
    return client


async def get_runs(request: Request) -> RunRegistry:
    """The pipeline runs' registry (built in the lifespan with a Redis client of its own, closed
    on shutdown), or 503 when Redis is not configured."""
    registry: RunRegistry | None = request.app.state.runs
    if registry is None:
        raise ApiError(503, "Redis is not configured")
    return registry


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DriverDep = Annotated[Driver, Depends(get_driver)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]
RedisDep = Annotated[Any, Depends(get_redis)]
RunsDep = Annotated[RunRegistry, Depends(get_runs)]
