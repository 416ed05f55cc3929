"""Liveness and dependency health."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RecommenderDep, SettingsDep
from api.schemas import ComponentHealth, Health
from graphstore.errors import GraphStoreError

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health)
def health(recommender: RecommenderDep, settings: SettingsDep) -> Health:
    """Neo4j, Redis and the active model version."""
    import redis

    from dpgcn.services import redis_url

    try:
        active = recommender.active()
        neo4j = ComponentHealth(ok=True, detail="reachable")
        version = active.version if active else None
    except GraphStoreError as e:
        neo4j, version = ComponentHealth(ok=False, detail=str(e)[:200]), None
    try:
        client = redis.Redis.from_url(
            redis_url(settings), socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
        client.close()
        redis_health = ComponentHealth(ok=True, detail="reachable")
    except Exception as e:  # any failure to reach Redis is reported, not raised
        redis_health = ComponentHealth(ok=False, detail=type(e).__name__)
    ok = neo4j.ok and redis_health.ok
    return Health(
        status="ok" if ok else "degraded", neo4j=neo4j, redis=redis_health, model_version=version
    )
