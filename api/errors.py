"""The one place where errors become HTTP responses."""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Sequence
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from neo4j.exceptions import DatabaseUnavailable, ServiceUnavailable, SessionExpired

from api.schemas import ErrorBody
from graphstore.errors import GraphStoreError, GraphUnavailableError
from graphstore.ids import ID_PATTERN, describe

#: Longest excerpt of request input an error repeats, and most errors one 422 lists.
EXCERPT = 40
MAX_ERRORS = 20

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


def excerpt(value: Any) -> Any:
    """A short, JSON-safe stand-in for request input: numbers and short strings as they are
    (non-finite numbers as text), long strings cut, containers never repeated."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return value if len(value) <= EXCERPT else value[:EXCERPT] + f"… ({len(value)} chars)"
    return f"<{type(value).__name__}>"


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors made safe to answer: field, rule and a short excerpt of the input,
    at most :data:`MAX_ERRORS` of them (a 422 never echoes the request body)."""
    out: list[dict[str, Any]] = []
    for e in errors[:MAX_ERRORS]:
        msg = str(e.get("msg", ""))[:300]
        value = e.get("input")
        pattern = (e.get("ctx") or {}).get("pattern")
        if e.get("type") == "string_pattern_mismatch" and pattern == ID_PATTERN:
            msg = f"not a valid id: {describe(str(value))}"
        item: dict[str, Any] = {
            "type": str(e.get("type", "")),
            "loc": [excerpt(part) for part in list(e.get("loc", ()))[:8]],
            "msg": msg,
        }
        if "input" in e:
            item["input"] = excerpt(value)
        out.append(item)
    if len(errors) > MAX_ERRORS:
        out.append({"type": "more", "loc": [], "msg": f"{len(errors) - MAX_ERRORS} more errors"})
    return out


def redacted_traceback(exc: BaseException) -> str:
    """The traceback's frames and exception types, without exception messages (they may
    hold request input or user ids)."""
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines.append(f"{type(current).__module__}.{type(current).__qualname__} (message hidden)")
        lines.extend(traceback.format_tb(current.__traceback__))
        current = current.__cause__ or current.__context__
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": validation_errors(exc.errors())})

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
