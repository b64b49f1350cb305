"""The admin endpoint exists only with a real ADMIN_TOKEN: an empty token would match an empty header."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from api.admin import admin_router
from shared.config import Settings


@pytest.mark.parametrize(
    ("token", "mounted"), [("", False), ("changeme", False), ("<token>", False), ("s3cr3t-x", True)]
)
def test_admin_routes_need_a_real_token(token: str, mounted: bool) -> None:
    settings = Settings(_env_file=None, admin_token=token)  # type: ignore[call-arg]
    client = aioredis.Redis()  # never connected: building the routes does no I/O
    router = admin_router(settings, client)
    assert (router is not None) is mounted
    if router is not None:
        assert sorted(route.path for route in router.routes) == [  # type: ignore[attr-defined]
            "/admin/handoff",
            "/admin/handoff/{person}/pause",
            "/admin/handoff/{person}/resume",
        ]
