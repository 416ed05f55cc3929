"""The one place where errors become HTTP responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from graphstore.errors import GraphStoreError, GraphUnavailableError

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": exc.detail})

    @app.exception_handler(GraphUnavailableError)
    async def _unavailable(_: Request, exc: GraphUnavailableError) -> JSONResponse:
        logger.warning("graph unavailable: %s", exc)
        return JSONResponse(
            status_code=503,
            content={"detail": "graph database unavailable"},
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(GraphStoreError)
    async def _graph_error(_: Request, exc: GraphStoreError) -> JSONResponse:
        logger.error("graph error: %s", exc)
        return JSONResponse(status_code=500, content={"detail": "graph error"})
