"""Who may use the server: the token, the host and origin checks, and the size of request bodies.

An ASGI middleware in front of the whole app (HTTP and WebSockets alike):

- with a token (any host but loopback), every request carries it, as
  ``Authorization: Bearer TOKEN``, a ``?token=TOKEN`` query (a page opened
  that way also gets it as a same-site cookie, so its own requests and sockets
  carry it) or that cookie;
- without one (loopback), the ``Host`` header must name the loopback address
  the server listens on, so that a web page elsewhere cannot reach it through
  a DNS name of its own;
- a request from a page of another origin (its ``Origin`` header) is refused;
- a body longer than the limit is refused with 413, counted as it arrives.
"""

from __future__ import annotations

import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

COOKIE = "fewshot_token"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


class TooLarge(Exception):
    pass


class Guard:
    """Parameters: ``app``; ``token`` (``None``: loopback only); ``hosts``, the ``Host`` values allowed
    without a token; ``max_body`` in bytes."""

    def __init__(self, app, *, token: str | None, hosts: set[str], max_body: int):
        self.app, self.token, self.hosts, self.max_body = app, token, hosts, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        host = headers.get("host", "")
        origin = headers.get("origin")
        if self.token is None and host not in self.hosts:
            return await refuse(scope, send, 403, f"this server answers to {' or '.join(sorted(self.hosts))} only")
        if origin is not None and origin.split("://", 1)[-1] != host:
            return await refuse(scope, send, 403, f"requests from pages of {origin} are refused")
        set_cookie = False
        if self.token is not None:
            given = [headers.get("authorization", "").removeprefix("Bearer ").strip(), *query.get("token", [])]
            cookie = SimpleCookie(headers.get("cookie", ""))
            given += [cookie[COOKIE].value] if COOKIE in cookie else []
            if not any(secrets.compare_digest(g.encode(), self.token.encode()) for g in given if g):
                return await refuse(
                    scope,
                    send,
                    401,
                    "a token is needed: open the address fewshot serve printed "
                    "(with ?token=...), or send 'Authorization: Bearer TOKEN'",
                )
            set_cookie = bool(query.get("token"))
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await refuse(
                scope,
                send,
                413,
                f"the upload is over the server's limit of {self.max_body / 1e6:g} MB (fewshot serve --max-upload-mb)",
            )
        seen = 0

        async def counted():
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.max_body:
                raise TooLarge(
                    f"the upload is over the server's limit of {self.max_body / 1e6:g} MB "
                    "(fewshot serve --max-upload-mb)"
                )
            return msg

        async def sending(msg):
            if set_cookie and msg["type"] == "http.response.start":
                value = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                msg = {**msg, "headers": [*msg.get("headers", []), (b"set-cookie", value.encode())]}
            await send(msg)

        await self.app(scope, counted, sending)


async def refuse(scope, send, status: int, reason: str) -> None:
    """Answer ``status`` with ``{"error": reason}`` (a WebSocket is closed before it opens)."""
    if scope["type"] == "websocket":
        return await send({"type": "websocket.close", "code": 4000 + status, "reason": reason[:120]})
    body = json.dumps({"error": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
