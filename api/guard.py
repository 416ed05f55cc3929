"""The request guard: what every ``/v1`` request passes before routing (pure ASGI middleware).

* **Ids are matched literally.** A ``/v1`` path whose raw form holds an encoded ``/``
  (``%2F``) is answered 404 before routing: servers decode the path before matching routes,
  so ``DELETE /v1/users/u11%2F`` would otherwise be routed as ``/v1/users/u11/``. No id
  that follows the id rule (graphstore/ids.py) needs an escape, and the app has no slash
  redirects (``redirect_slashes=False``), so a request reaches only the id it names.
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

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
            )
            return
        await self.app(scope, receive, send)
