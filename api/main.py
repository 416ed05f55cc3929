"""The FastAPI app and its lifespan (one Neo4j driver per process)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.recommender import Recommender
from api.routes import health, items, models, recommendations
from dpgcn import __version__
from dpgcn.services import neo4j_connection
from dpgcn.settings import get_settings
from graphstore.driver import connect

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    conn = neo4j_connection(settings)
    driver = connect(conn.uri, conn.user, conn.password)
    app.state.driver = driver
    app.state.recommender = Recommender(driver, conn.database)
    try:
        yield
    finally:
        driver.close()


def create_app() -> FastAPI:
    app = FastAPI(
        title="DP-GCN recommender",
        version=__version__,
        description="Personalized items and query suggestions from a DP-GCN model whose "
        "embeddings live in Neo4j.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(health.router)
    app.include_router(recommendations.router)
    app.include_router(items.router)
    app.include_router(models.router)
    return app


app = create_app()
