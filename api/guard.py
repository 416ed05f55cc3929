"""The request guard: what every ``/v1`` request passes before routing (pure ASGI middleware).

* **Ids are matched literally.** A ``/v1`` path whose raw form holds an encoded ``/``
  (``%2F``) is answered 404 before routing: servers decode the path before matching routes,
  so ``DELETE /v1/users/u11%2F`` would otherwise be routed as ``/v1/users/u11/``. No id
  that follows the id rule (graphstore/ids.py) needs an escape, and the app has no slash
  redirects (``redirect_slashes=False``), so a request reaches only the id it names.
* **No body is read before authentication.** A ``/v1`` request that declares a body
  (``Content-Length`` above 0, or ``Transfer-Encoding``) must carry a valid API key, decided
  by the in-memory key table (api/security.py), before anything reads the body; otherwise
  401 and the connection is closed unread. The scope is checked later by the route.
  The size limits themselves are FastAPI's (``max_body_size`` of each route, set in
  api/main.py from ``DPGCN_API_MAX_BODY_BYTES`` / ``DPGCN_API_BODY_LIMITS``): 413 from
  ``Content-Length`` before any byte is read, or as soon as a chunked body exceeds it.
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import ApiError
from api.security import admit
from graphstore.errors import GraphUnavailableError

logger = logging.getLogger(__name__)

PREFIX = "/v1/"


async def send_error(send: Send, status: int, detail: str, close: bool = False) -> None:
    """A small JSON error response (``close``: the request body was not read)."""
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b"ApiKey"))
    if status == 503:
        headers.append((b"retry-after", b"5"))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        if b"%2f" in scope.get("raw_path", b"").lower():
            await send_error(
                send,
                404,
                "not found: ids in /v1 paths are matched literally and never hold '/' "
                "(an id outside the id rule is erased with POST /v1/users/erase)",
                close=_declares_body(scope),
            )
            return
        if _declares_body(scope):
            key = next((v for n, v in scope["headers"] if n == b"x-api-key"), None)
            try:
                await admit(
                    scope["app"].state.keys,
                    key.decode("latin-1") if key is not None else None,
                    "read",  # any valid key; the route checks its scope
                )
            except ApiError as e:
                await send_error(send, e.status, e.detail, close=True)
                return
            except GraphUnavailableError:
                await send_error(send, 503, "graph database unavailable", close=True)
                return
        await self.app(scope, receive, send)


def _declares_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.strip() not in (b"0", b""):
            return True
        if name == b"transfer-encoding":
            return True
    return False
