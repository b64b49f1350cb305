"""The floor of the ack-path benchmark: a bare ASGI app that reads the body and answers 200, nothing else.

Served by `python -m bench.floor_app` with exactly the uvicorn settings of `loopera api`, so the difference
between the two is our code: signature, parsing, envelopes, the Redis round trip, metrics.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"15")]


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return  # lifespan: nothing to set up
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})


def main() -> None:
    import uvicorn

    from loopera.cli import uvicorn_options

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), lifespan="off", **uvicorn_options())


if __name__ == "__main__":
    main()
