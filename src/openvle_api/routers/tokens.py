"""GET /tokens/current: the caller's own token (the console shows what it may do)."""

from __future__ import annotations

from openvle_api.deps import API_PREFIX, ReadAuth
from openvle_api.responses import READ_ERRORS
from openvle_api.routing import api_router
from openvle_api.schemas.tokens import CurrentToken

router = api_router(prefix=f"{API_PREFIX}/tokens", tags=["tokens"])


@router.get("/current", name="getCurrentToken", responses=READ_ERRORS, summary="The caller's token")
async def current_token(principal: ReadAuth) -> CurrentToken:
    """The id, name and scope of the bearer token of this request."""
    return CurrentToken(id=principal.token_id, name=principal.name, scope=principal.scope)
