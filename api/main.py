"""The FastAPI app and its lifespan (one Neo4j driver, one Redis client and one run registry
per process, closed on shutdown)."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from api import errors, metrics
from api.errors import redacted_traceback
from api.guard import RequestGuard
from api.metrics import ObservabilityMiddleware
from api.recommender import Recommender
from api.routes import events, health, items, models, recommendations, users
from api.security import KeyCache
from api.storewatch import StoreWatch
from dpgcn import __version__
from dpgcn.services import ServiceError, neo4j_connection, redis_url
from dpgcn.settings import Settings, get_settings
from graphstore import statelog
from graphstore.driver import connect
from graphstore.errors import GraphStoreError, GraphUnavailableError
from graphstore.schema import apply_schema
from workers.runs import RunRegistry

logger = logging.getLogger(__name__)

DESCRIPTION = """
Personalized items and query suggestions from a DP-GCN model whose embeddings live in Neo4j.

**Authentication:** every `/v1` route needs an `X-API-Key` header with a key from
`dpgcn apikey create --scope read|write|admin` (scopes are ordered read < write < admin).
401: missing or bad key; 403: scope too small. `/health`, `/ready`, `/metrics` and the
docs are open. 503 (with `Retry-After`) while Neo4j or Redis is unavailable.
"""


def _driver(settings: Settings) -> Any:
    """A driver that fails fast while Neo4j is down (the request becomes a 503) and starts
    even when Neo4j is not up yet."""
    conn = neo4j_connection(settings)
    config: dict[str, Any] = {
        "max_transaction_retry_time": 1.0,
        "connection_acquisition_timeout": 5.0,
        "max_connection_pool_size": 64,
    }
    try:
        return connect(conn.uri, conn.user, conn.password, **config)
    except GraphUnavailableError:
        logger.warning("Neo4j is not reachable yet; answering 503 until it is")
        return connect(conn.uri, conn.user, conn.password, verify=False, **config)


def _redis(settings: Settings) -> Any:
    import redis

    try:
        return redis.Redis.from_url(redis_url(settings), socket_connect_timeout=1, socket_timeout=2)
    except ServiceError as e:
        logger.warning("no Redis: %s", e)
        return None


def _runs(settings: Settings) -> RunRegistry | None:
    """The pipeline runs' registry (``/v1/jobs``): its own client, whose replies are decoded."""
    try:
        return RunRegistry.from_url(redis_url(settings))
    except ServiceError as e:
        logger.warning("no run registry: %s", e)
        return None


def _limit_blas(threads: int) -> None:
    """NumPy's BLAS would start its own threads inside every request thread and oversubscribe
    the cores (see docs/benchmarks-api.md); one thread per request is faster."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


def _store_changed(keys: KeyCache, recommender: Recommender) -> None:
    """After a restore (a new store): forget what was read from the old one — the serving
    snapshot (it may hold users erased since the backup) and the active version — and read
    the key table again (keys revoked since the backup are revoked again by the restore)."""
    if recommender.scorer is not None:
        recommender.scorer.snapshot = None
    recommender.changes.forget_before(float("inf"))
    recommender.invalidate()
    keys.clear()
    keys.refresh()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    _limit_blas(settings.api.blas_threads)
    # The access log is ours (JSON, route templates); uvicorn's would log raw paths.
    logging.getLogger("uvicorn.access").disabled = True
    driver = _driver(settings)
    db = settings.neo4j.database
    try:
        apply_schema(driver, db)
    except GraphStoreError as e:
        logger.warning("schema not applied (%s); continuing", type(e).__name__)
    app.state.driver = driver
    app.state.redis = _redis(settings)
    app.state.runs = _runs(settings)
    app.state.keys = keys = KeyCache(
        driver,
        db,
        settings.api.key_cache_s,
        miss_refresh_s=settings.api.key_miss_refresh_s,
        negative_ttl_s=settings.api.key_negative_cache_s,
    )
    keys.start()
    app.state.recommender = recommender = Recommender(
        driver,
        db,
        refresh_s=settings.api.refresh_s,
        popular_cache_s=settings.api.popular_cache_s,
        snapshot=settings.api.snapshot,
        redis=app.state.redis,
        max_batch=settings.api.max_batch,
    )
    recommender.start()
    # Erasures and revocations are also logged outside the graph, in the state home, for a
    # restore to replay (graphstore.statelog).
    statelog.set_directory(settings.home)
    app.state.storewatch = watch = StoreWatch(driver, db, lambda: _store_changed(keys, recommender))
    watch.start()
    # Reading a policy needs torch, whose first import takes seconds on a small machine: do it
    # now, beside start-up, rather than inside the first request that meets a new policy.
    threading.Thread(target=importlib.import_module, args=("torch",), daemon=True).start()
    try:
        yield
    finally:
        watch.stop()
        keys.stop()
        recommender.stop()
        if app.state.redis is not None:
            app.state.redis.close()
        if app.state.runs is not None:
            app.state.runs.close()
        driver.close()


#: FastAPI's OpenTelemetry instrumentation switched off: the API's metrics are Prometheus
#: (``/metrics``) and its logs JSON; with no OTel SDK configured it records nothing but still
#: costs each request a look-up of three environment variables (``DPGCN_API_OTEL=true``
#: turns it on for a deployment that configures OTel).
TELEMETRY_OFF: dict[str, Any] = {"tracing": False, "metrics": False, "logs": False}


class RecommenderApi(FastAPI):
    """The app: FastAPI, with unhandled errors logged redacted."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except Exception as e:
            # Starlette has answered 500 and re-raises for the server to log; the server would
            # log the exception's message, which may hold request input or a user id.
            if scope["type"] != "http":
                raise
            logger.error(
                "unhandled error in %s %s:\n%s",
                scope.get("method"),
                metrics.route_template(scope),
                redacted_traceback(e),
            )


def create_app() -> FastAPI:
    settings = get_settings()
    app = RecommenderApi(
        title="DP-GCN recommender",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # no 307 from /v1/users/u11/ to /v1/users/u11: a path reaches exactly the id it names
        redirect_slashes=False,
        telemetry=None if settings.api.otel else TELEMETRY_OFF,  # type: ignore[arg-type]
    )
    errors.install(app)
    # Every request, the commonest included, passes both: one stack, no side entrance.
    app.add_middleware(RequestGuard)  # inside the metrics: its answers are counted
    app.add_middleware(ObservabilityMiddleware)
    routers = (health, recommendations, items, events, users, models)
    _route_body_limits(
        [r.router for r in routers], settings.api.max_body_bytes, settings.api.body_limits
    )
    for module in routers:
        app.include_router(module.router)
    return app


def _route_body_limits(routers: list[APIRouter], default: int, limits: dict[str, int]) -> None:
    """Each route's body limit (FastAPI's ``max_body_size``: 413 from Content-Length before
    any byte is read, or as soon as a streamed body passes it): ``limits[route path]``, else
    ``default``. Per route, not per app, so that the request guard, which admits no body
    without a valid key, runs first (api/guard.py)."""
    paths = {r.path for router in routers for r in router.routes if isinstance(r, APIRoute)}
    unknown = sorted(set(limits) - paths)
    if unknown:
        raise ValueError(f"DPGCN_API_BODY_LIMITS names unknown routes: {', '.join(unknown)}")
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                route.max_body_size = limits.get(route.path, default)


app = create_app()
