"""The one place where errors become HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from neo4j.exceptions import DatabaseUnavailable, ServiceUnavailable, SessionExpired

from api.schemas import ErrorBody
from graphstore.errors import GraphStoreError, GraphUnavailableError

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


#: Error responses documented on the routes (OpenAPI).
def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "Missing, malformed, unknown or revoked API key",
        403: "The API key's scope is too small",
        404: "Not found",
        409: "Conflict",
        422: "Invalid request (the detail names the field and the rule)",
        503: "Neo4j or Redis unavailable (retry after the Retry-After seconds)",
    }
    return {c: {"model": ErrorBody, "description": text.get(c, "Error")} for c in codes}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": "5"} if exc.status == 503 else None
        if exc.status == 401:
            headers = {"WWW-Authenticate": "ApiKey"}
        return JSONResponse(status_code=exc.status, content={"detail": exc.detail}, headers=headers)

    @app.exception_handler(GraphUnavailableError)
    async def _unavailable(_: Request, exc: GraphUnavailableError) -> JSONResponse:
        logger.warning("graph unavailable: %s", type(exc.__cause__ or exc).__name__)
        return JSONResponse(
            status_code=503,
            content={"detail": "graph database unavailable"},
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(redis.RedisError)
    async def _redis_unavailable(_: Request, exc: redis.RedisError) -> JSONResponse:
        logger.warning("redis unavailable: %s", type(exc).__name__)
        return JSONResponse(
            status_code=503, content={"detail": "redis unavailable"}, headers={"Retry-After": "5"}
        )

    async def _driver_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # A driver error that reached us unwrapped (graphstore wraps those it sees as
        # GraphUnavailableError); an unreachable Neo4j is a 503 either way.
        logger.warning("graph unavailable: %s", type(exc).__name__)
        return JSONResponse(
            status_code=503,
            content={"detail": "graph database unavailable"},
            headers={"Retry-After": "5"},
        )

    for unavailable in (ServiceUnavailable, SessionExpired, DatabaseUnavailable):
        app.add_exception_handler(unavailable, _driver_unavailable)

    @app.exception_handler(GraphStoreError)
    async def _graph_error(_: Request, exc: GraphStoreError) -> JSONResponse:
        logger.error("graph error: %s", exc)
        return JSONResponse(status_code=500, content={"detail": "graph error"})
