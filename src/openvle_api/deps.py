"""Request dependencies as `Annotated` aliases, so routers stay declarative.

`Uow` is the unit of work: the request's session, committed after the handler returned
(before the response is sent) or rolled back on error; operation ids queued on it with
`enqueue_after_commit` are handed to the job queue only after the commit succeeded.
`ReadAuth`, `OperateAuth` and `AdminAuth` require a bearer token of at least that scope
(`OperateAuth` and `AdminAuth` are `ScopeGuard`s: routes with a body run them from the
headers before the body is read, see routing.py).
`ReadAuth` (GET requests only) needs no unit of work: a cached token costs no database
work, and a lookup opens a read session of its own. `Reader` runs Core reads without a
session (readdb.py on SQLite).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openvle_api.auth import Principal
from openvle_api.errors import ApiProblem
from openvle_api.state import app_state
from openvle_core.db.enums import TokenScope
from openvle_core.db.pagination import DEFAULT_LIMIT, MAX_LIMIT
from openvle_core.db.session import EngineRowReader, RowReader, transaction
from openvle_core.queue import QueueUnavailable
from openvle_core.runtime import Runtime
from openvle_core.tokens.service import scope_allows

log = logging.getLogger(__name__)


async def get_runtime(request: Request) -> Runtime:
    """The process's runtime, opened by the app's lifespan.

    (Dependencies are `async def` on purpose: FastAPI runs plain `def` ones in a thread.)
    """
    return app_state(request).require_runtime()


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@dataclass
class UnitOfWork:
    """The request's session and the operations to enqueue once it committed."""

    session: AsyncSession
    read_only: bool = False
    to_enqueue: list[str] = field(default_factory=list)

    def enqueue_after_commit(self, op_id: str) -> None:
        """Queue `op_id` for the job queue, sent only if the commit succeeds."""
        self.to_enqueue.append(op_id)


def read_sessions(request: Request, runtime: Runtime) -> async_sessionmaker[AsyncSession]:
    """Sessions for read-only work: on SQLite deferred transactions (see app.py)."""
    return app_state(request).read_sessions or runtime.sessions


async def get_uow(request: Request, runtime: RuntimeDep) -> AsyncIterator[UnitOfWork]:
    """Open a session; commit after the handler (then enqueue), roll back on error.

    GET requests only read, so they get a read session (no write lock on SQLite).
    The queue is asked first when operations are to be enqueued: Redis down means a 503
    (`QueueUnavailable`) and the rollback of everything staged, so a refused request
    leaves nothing behind. Should Redis fail between that check and the enqueue, the
    committed operation is still whole: the recovery scan queues it (see `lease.recover`).
    """
    reading = request.method in {"GET", "HEAD"}
    sessions = read_sessions(request, runtime) if reading else runtime.sessions
    async with sessions() as session:
        uow = UnitOfWork(session, read_only=sessions is not runtime.sessions)
        try:
            yield uow
            if uow.to_enqueue:
                await runtime.queue.ensure_reachable()
        except BaseException:
            await session.rollback()
            raise
        if not uow.read_only:  # a read-only session has nothing to commit; close ends it
            await session.commit()
    for op_id in uow.to_enqueue:
        try:
            await runtime.queue.enqueue(op_id)
        except QueueUnavailable:  # committed: the recovery scan enqueues it after a lease
            log.warning(
                "operation %s committed, not queued (Redis down): recovery queues it", op_id
            )


Uow = Annotated[UnitOfWork, Depends(get_uow, scope="function")]

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="An API token from `openvle token create` (scopes read < operate < admin).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _unauthorized(detail: str, error: str | None = None) -> ApiProblem:
    challenge = 'Bearer realm="openvle"' + (f', error="{error}"' if error else "")
    return ApiProblem(401, "unauthorized", detail, {"WWW-Authenticate": challenge})


def _checked(principal: Principal | None, needed: TokenScope) -> Principal:
    """`principal` if it may do what needs `needed`; the 401 or 403 otherwise."""
    if principal is None:
        raise _unauthorized("the API token is unknown, revoked or expired", "invalid_token")
    if not scope_allows(principal.scope, needed):
        raise ApiProblem(
            403,
            "forbidden",
            f"this needs a token with scope '{needed}'; this one has '{principal.scope}'",
            {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
        )
    return principal


def _plain_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None:
        raise _unauthorized("an API token is required: Authorization: Bearer <token>")
    return credentials.credentials


PRINCIPAL_KEY = "openvle.principal"  # set in the scope when auth ran before the body


class ScopeGuard:
    """A dependency that authenticates the bearer token and checks it allows `needed`.

    Routes with a body authenticate before the body is read (routing.py) and leave the
    principal in the request's scope; the guard then only checks it.
    """

    def __init__(self, needed: TokenScope) -> None:
        self.needed = needed

    async def __call__(
        self, request: Request, uow: Uow, credentials: Credentials, runtime: RuntimeDep
    ) -> Principal:
        early = request.scope.get(PRINCIPAL_KEY)
        if isinstance(early, Principal):
            return _checked(early, self.needed)
        plain = _plain_token(credentials)
        auth = app_state(request).authenticator
        writer = runtime.sessions if uow.read_only else None
        return _checked(await auth.resolve(uow.session, plain, writer), self.needed)


def require_scope(needed: TokenScope) -> ScopeGuard:
    """A dependency that authenticates the bearer token and checks its scope."""
    return ScopeGuard(needed)


async def authenticate_first(request: Request, needed: TokenScope) -> None:
    """Authenticate from the headers alone (401/403 before any body byte is read)."""
    plain = _plain_token(await bearer(request))
    principal = _checked(await _lookup(request, plain), needed)
    request.scope[PRINCIPAL_KEY] = principal


async def read_auth(request: Request, credentials: Credentials) -> Principal:
    """`require_scope(READ)` for GET requests, without a unit of work."""
    return _checked(await _lookup(request, _plain_token(credentials)), TokenScope.READ)


async def _lookup(request: Request, plain: str) -> Principal | None:
    """The principal of `plain` without the request's unit of work.

    A cached token is checked without the database; otherwise the lookup runs in a read
    session of its own and the use is recorded in a short write transaction.
    """
    state = app_state(request)
    auth = state.authenticator
    principal = auth.peek(plain)
    if principal is None:
        runtime = state.require_runtime()
        readers = read_sessions(request, runtime)
        if readers is runtime.sessions:  # one engine: look up and record use in one go
            async with transaction(readers) as session:
                principal = await auth.resolve(session, plain)
        else:  # SQLite's read engine cannot write: the use goes through the shared one
            async with readers() as session:
                principal = await auth.resolve(session, plain, runtime.sessions)
    return principal


async def get_row_reader(request: Request) -> RowReader:
    """`row_reader` as a dependency."""
    return row_reader(request)


def row_reader(request: Request) -> RowReader:
    """The app's RowReader (readdb.py's), else one on the runtime's engine."""
    state = app_state(request)
    if state.row_reader is None:  # in-memory SQLite, or an app served without its lifespan
        return EngineRowReader(state.require_runtime().sessions.kw["bind"])
    return state.row_reader


Reader = Annotated[RowReader, Depends(get_row_reader)]
ReadAuth = Annotated[Principal, Depends(read_auth)]
OperateAuth = Annotated[Principal, Depends(require_scope(TokenScope.OPERATE))]
AdminAuth = Annotated[Principal, Depends(require_scope(TokenScope.ADMIN))]


@dataclass(frozen=True)
class PageParams:
    """`limit` and `cursor` of a list request."""

    limit: int
    cursor: str | None


async def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (max {MAX_LIMIT}).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=512, description="`next_cursor` of the previous page."),
    ] = None,
) -> PageParams:
    """Pagination parameters, validated."""
    return PageParams(limit, cursor)


Paging = Annotated[PageParams, Depends(page_params)]


API_PREFIX = "/api/v1"
