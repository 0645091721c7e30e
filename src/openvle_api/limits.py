"""The request-body limit (`API_MAX_BODY_BYTES`), as a pure ASGI middleware.

A body larger than the limit is refused with 413 problem+json before it is read: a
`Content-Length` over the limit is answered without calling the app at all, and a body
sent without one (chunked) is counted as it streams in and cut off at the first chunk
past the limit, so a process never holds more than the limit plus one chunk of a body.
The limit sits outside the framework so no route, present or future, can read past it.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openvle_api.errors import problem_response


class BodyTooLarge(HTTPException):
    """The request body is larger than `API_MAX_BODY_BYTES`.

    An HTTPException, so the framework re-raises it from its body reading (instead of
    calling it a parse error) and the app's handler answers it as problem+json.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_detail(limit))
        self.limit = limit


def too_large_detail(limit: int) -> str:
    """What a 413 says: the limit and the setting that moves it."""
    return f"the request body is larger than {limit} bytes (API_MAX_BODY_BYTES)"


class BodyLimitMiddleware:
    """Refuses request bodies over `limit` bytes with 413 before they are read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await _refuse(scope, receive, send, self.limit)
            return
        counted = _CountingReceive(receive, self.limit)
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except BodyTooLarge:  # raised by a read outside a route (a route's handler answers)
            if started:
                raise
            await _refuse(scope, receive, send, self.limit)


class _CountingReceive:
    """`receive`, raising BodyTooLarge once the body's bytes pass the limit."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive, self.limit, self.seen = receive, limit, 0

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                raise BodyTooLarge(self.limit)
        return message


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    """Send the 413 problem document; the connection closes (the body stays unread)."""
    response = problem_response(
        Request(scope),
        413,
        "content_too_large",
        too_large_detail(limit),
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)
