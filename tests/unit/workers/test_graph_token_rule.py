"""Where the Graph bearer token may go: https to Meta or the configured Graph host; plain http only in the sandbox,
only to the configured loopback Graph origin."""

from __future__ import annotations

import pytest

from workers.clients.graph import GraphClient


def client(base_url: str, sandbox: bool = False) -> GraphClient:
    return GraphClient(base_url, "v25.0", "token", "123", sandbox=sandbox)


@pytest.mark.parametrize(
    ("base_url", "sandbox", "url", "allowed"),
    [
        ("https://graph.facebook.com", False, "https://graph.facebook.com/v25.0/1", True),
        ("https://graph.facebook.com", False, "https://lookaside.fbsbx.com/whatsapp/x", True),
        ("https://graph.facebook.com", False, "http://lookaside.fbsbx.com/whatsapp/x", False),
        ("https://graph.facebook.com", False, "https://evil.example/x", False),
        ("https://graph.facebook.com", True, "http://graph.facebook.com/v25.0/1", False),
        # Outside the sandbox even the configured loopback Graph URL needs https.
        ("http://127.0.0.1:8001", False, "http://127.0.0.1:8001/v25.0/1", False),
        ("http://127.0.0.1:8001", True, "http://127.0.0.1:8001/v25.0/1", True),
        ("http://127.0.0.1:8001", True, "http://127.0.0.1:8001/download/7", True),
        # Exactly the configured origin: another port or host name is not the stand-in.
        ("http://127.0.0.1:8001", True, "http://127.0.0.1:9999/download/7", False),
        ("http://127.0.0.1:8001", True, "http://localhost:8001/download/7", False),
        ("http://127.0.0.1:8001", True, "http://lookaside.fbsbx.com/x", False),
        # SANDBOX never relaxes plain http to a host that is not loopback.
        ("http://graph.example:8001", True, "http://graph.example:8001/v25.0/1", False),
        ("http://127.0.0.1:8001", True, "ftp://127.0.0.1:8001/x", False),
        # Meta's hosts on their default port only; the configured Graph URL exactly (scheme, host and port).
        ("https://graph.facebook.com", False, "https://lookaside.fbsbx.com:443/whatsapp/x", True),
        ("https://graph.facebook.com", False, "https://lookaside.fbsbx.com:8443/whatsapp/x", False),
        ("https://graph.facebook.com", False, "https://graph.facebook.com:444/v25.0/1", False),
        ("https://graph.example:8443", False, "https://graph.example:8443/v25.0/1", True),
        ("https://graph.example:8443", False, "https://graph.example/v25.0/1", False),
        ("https://graph.example:8443", False, "https://graph.example:9443/v25.0/1", False),
        ("http://127.0.0.1:8001", True, "https://127.0.0.1:8001/download/7", False),
        ("https://graph.facebook.com", False, "https://lookaside.fbsbx.com:notaport/x", False),
    ],
)
def test_token_destinations(base_url: str, sandbox: bool, url: str, allowed: bool) -> None:
    graph = client(base_url, sandbox)
    try:
        assert graph.may_receive_token(url) is allowed
    finally:
        graph.close()
