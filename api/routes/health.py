"""Liveness, readiness and metrics (open: no API key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import RecommenderDep, SettingsDep
from api.schemas import ComponentHealth, Health, Readiness
from graphstore.driver import ping

router = APIRouter(tags=["operations"])


def _redis_health(client: Any) -> ComponentHealth:
    if client is None:
        return ComponentHealth(ok=False, detail="not configured")
    try:
        client.ping()
        return ComponentHealth(ok=True, detail="reachable")
    except Exception as e:  # any failure to reach Redis is reported, not raised
        return ComponentHealth(ok=False, detail=type(e).__name__)


@router.get("/health", response_model=Health)
def health(request: Request, recommender: RecommenderDep, settings: SettingsDep) -> Health:
    """Neo4j, Redis and the active model version (always 200; ``status`` says degraded)."""
    try:
        # a ping of its own: the active version may come from a cache that the background
        # refresher is busy renewing
        ping(request.app.state.driver, settings.neo4j.database)
        active = recommender.active()
        neo4j = ComponentHealth(ok=True, detail="reachable")
        version = active.version if active else None
    except Exception as e:  # any failure to reach Neo4j is reported, not raised
        neo4j, version = ComponentHealth(ok=False, detail=type(e).__name__), None
    redis_health = _redis_health(request.app.state.redis)
    ok = neo4j.ok and redis_health.ok
    return Health(
        status="ok" if ok else "degraded", neo4j=neo4j, redis=redis_health, model_version=version
    )


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
def ready(request: Request, recommender: RecommenderDep, settings: SettingsDep) -> Any:
    """200 when Neo4j answers, Redis answers and a model version is active; else 503."""
    try:
        ping(request.app.state.driver, settings.neo4j.database)
        neo4j = ComponentHealth(ok=True, detail="reachable")
        active = recommender.active()
        model = (
            ComponentHealth(ok=True, detail=active.version)
            if active
            else ComponentHealth(ok=False, detail="no active model version")
        )
    except Exception as e:  # any failure to reach Neo4j is reported, not raised
        neo4j = ComponentHealth(ok=False, detail=type(e).__name__)
        model = ComponentHealth(ok=False, detail="unknown (Neo4j unavailable)")
    redis_health = _redis_health(request.app.state.redis)
    snapshot: ComponentHealth | None = None
    if recommender.scorer is not None:
        snap = recommender.snapshot
        snapshot = (
            ComponentHealth(ok=False, detail="loading")
            if snap is None
            else ComponentHealth(
                ok=model.ok and snap.version == model.detail,
                detail=f"{snap.version}: {len(snap.user_pos)} users, {len(snap.items.ids)} items",
            )
        )
    body = Readiness(
        ready=neo4j.ok and redis_health.ok and model.ok,
        neo4j=neo4j,
        redis=redis_health,
        model=model,
        snapshot=snapshot,
    )
    if not body.ready:
        return JSONResponse(
            status_code=503, content=body.model_dump(), headers={"Retry-After": "5"}
        )
    return body


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics() -> Response:
    """Prometheus metrics: request latency histograms and counts per route template, errors,
    cache hits and misses, recommendation strategies."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
