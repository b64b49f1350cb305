"""A small operator endpoint for handoff: list, pause and resume conversations (docs/handoff.md).

Authenticated with `Authorization: Bearer <ADMIN_TOKEN>`; with ADMIN_TOKEN empty the routes are not mounted at all
(an empty token compares equal to an empty header, which anyone can send). The state is the one `loopera handoff`
and the workers use (shared/handoff.py): `paused_until` in the conversation's state hash.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Header, HTTPException, Query

from shared.config import Settings, is_placeholder
from shared.handoff import PAUSED_FIELD
from shared.identity import link_key, linked_conversation, named_identity
from shared.ledger import CONVERSATION_STATE_PREFIX, conversation_state_key
from shared.logging import conversation_ref, get_logger

log = get_logger("api.admin")

Person = Annotated[str, "a wa_id, a business-scoped user id, or a conversation id from GET /admin/handoff"]


def admin_router(settings: Settings, client: aioredis.Redis) -> APIRouter | None:
    """The /admin routes, or None when ADMIN_TOKEN is empty or a placeholder (disabled)."""
    if is_placeholder(settings.admin_token):
        return None
    token = settings.admin_token.get_secret_value().encode()

    def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        if authorization is None:
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token):
            raise HTTPException(403, "bad token")

    router = APIRouter(prefix="/admin", dependencies=[Depends(authorised)])
    key = settings.message_hashing_key()

    async def conversation_of(person: str) -> str:
        # Conversations are keyed by digests (shared/identity.py): the operator names the person.
        named, is_conversation = named_identity(person, key)
        return named if is_conversation else linked_conversation(named, await client.get(link_key(named)))

    @router.get("/handoff")
    async def paused() -> dict[str, Any]:
        now, found = int(time.time() * 1000), {}
        async for key in client.scan_iter(match=CONVERSATION_STATE_PREFIX + "*", count=1000):
            until = await client.hget(key, PAUSED_FIELD)
            if until is not None and int(until) > now:
                name = key.decode() if isinstance(key, bytes) else str(key)
                found[name.removeprefix(CONVERSATION_STATE_PREFIX)] = int(until)
        return {"paused": [{"conversation": c, "paused_until_ms": u} for c, u in sorted(found.items())]}

    @router.post("/handoff/{person}/pause")
    async def pause(
        person: Person, minutes: Annotated[int | None, Query(ge=1, le=7 * 24 * 60)] = None
    ) -> dict[str, Any]:
        conversation = await conversation_of(person)
        until = int(time.time() * 1000) + (minutes or settings.handoff_pause_minutes) * 60_000
        await client.hset(conversation_state_key(conversation), PAUSED_FIELD, until)
        log.info("handoff.paused_by_operator", conversation=conversation_ref(conversation))
        return {"conversation": conversation, "paused_until_ms": until}

    @router.post("/handoff/{person}/resume")
    async def resume(person: Person) -> dict[str, Any]:
        conversation = await conversation_of(person)
        removed = await client.hdel(conversation_state_key(conversation), PAUSED_FIELD)
        log.info("handoff.resumed_by_operator", conversation=conversation_ref(conversation))
        return {"conversation": conversation, "was_paused": bool(removed)}

    return router
