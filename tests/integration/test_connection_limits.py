"""Connections have time limits at the entry point (issue #16, kind 3), on a real uvicorn API over raw sockets.

Dripped bodies get a 408 and their connection closed within WEBHOOK_BODY_TIMEOUT_SECONDS; a head dripped or never
sent is closed within API_READ_TIMEOUT_SECONDS; a 413 closes the connection instead of draining the body; beyond
API_MAX_CONNECTIONS requests get 503 and their connection is closed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import RedisServer, start_api

pytestmark = pytest.mark.integration

BODY_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
MARGIN = 2.0  # scheduling slack on a loaded 2-core CI host; the failure this guards against is "open for minutes"


def _start(service_env: dict[str, str], redis_server: RedisServer, workdir: Path, name: str, **env: str):
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/3"
    return start_api({**service_env, "REDIS_URL": redis_url, **env}, workdir / f"{name}.log")


@pytest.fixture(scope="module")
def timed_api(service_env: dict[str, str], redis_server: RedisServer, workdir: Path) -> Iterator[tuple[str, int]]:
    process, url = _start(
        service_env,
        redis_server,
        workdir,
        "timed-api",
        WEBHOOK_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
        API_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT),
        MAX_WEBHOOK_BYTES="65536",
    )
    host, port = url.removeprefix("http://").split(":")
    yield host, int(port)
    process.stop()


def _head(path: str = "/webhook", length: int | None = 100, extra: str = "") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: loopera", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


async def _drip(host: str, port: int, head: bytes, drip: bytes, every: float, limit: float) -> tuple[float, bytes]:
    """Send `head`, then one byte of `drip` every `every` seconds, until the server closes the connection. Returns
    (seconds until closed, everything the server answered); fails if it is still open after `limit` seconds."""
    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    answer = bytearray()

    async def read_until_closed() -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                answer.extend(chunk)

    reading = asyncio.create_task(read_until_closed())
    try:
        writer.write(head)
        for byte in drip:
            await asyncio.wait([reading], timeout=every)
            if reading.done():
                break
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
        try:
            await asyncio.wait_for(reading, timeout=max(0.0, limit - (time.monotonic() - started)))
        except TimeoutError:
            raise AssertionError(f"still open after {limit} s") from None
        return time.monotonic() - started, bytes(answer)
    finally:
        reading.cancel()
        writer.close()


def test_a_dripped_webhook_body_gets_408_and_is_closed(timed_api: tuple[str, int]) -> None:
    host, port = timed_api
    took, answer = asyncio.run(_drip(host, port, _head(length=500), b"{" * 500, 0.2, BODY_TIMEOUT + MARGIN))
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"connection: close" in answer.lower()
    assert took < BODY_TIMEOUT + MARGIN


def test_many_dripping_connections_are_all_closed_within_the_timeout(timed_api: tuple[str, int]) -> None:
    host, port = timed_api

    async def many() -> list[tuple[float, bytes]]:
        drips = [_drip(host, port, _head(length=5000), b"{" * 5000, 0.5, BODY_TIMEOUT + MARGIN) for _ in range(300)]
        return await asyncio.gather(*drips)

    results = asyncio.run(many())
    assert max(took for took, _ in results) < BODY_TIMEOUT + MARGIN
    assert all(answer.startswith(b"HTTP/1.1 408") for _, answer in results)


def test_a_dripped_head_is_closed_without_an_answer(timed_api: tuple[str, int]) -> None:
    host, port = timed_api
    head = b"POST /webhook HTTP/1.1\r\nHost: loopera\r\nX-Slow: " + b"a" * 200
    took, answer = asyncio.run(_drip(host, port, b"", head, 0.3, READ_TIMEOUT + MARGIN))
    assert answer == b""
    assert took < READ_TIMEOUT + MARGIN


def test_a_connection_that_never_sends_a_byte_is_closed(timed_api: tuple[str, int]) -> None:
    host, port = timed_api
    took, answer = asyncio.run(_silent(host, port, READ_TIMEOUT + MARGIN))
    assert answer == b""
    assert took < READ_TIMEOUT + MARGIN


def test_a_body_dripped_to_a_route_that_never_reads_it_is_cut_off(timed_api: tuple[str, int]) -> None:
    host, port = timed_api
    head = b"GET /health HTTP/1.1\r\nHost: loopera\r\nContent-Length: 1000\r\n\r\n"
    took, answer = asyncio.run(_drip(host, port, head, b"x" * 1000, 0.3, READ_TIMEOUT + MARGIN))
    assert answer.startswith(b"HTTP/1.1 200")  # answered at once; then the rest of the body is not waited for
    assert took < READ_TIMEOUT + MARGIN


async def _silent(host: str, port: int, limit: float) -> tuple[float, bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    try:
        answer = await asyncio.wait_for(reader.read(), timeout=limit)
        return time.monotonic() - started, answer
    finally:
        writer.close()


def test_a_keep_alive_connection_still_serves_requests_in_time(timed_api: tuple[str, int]) -> None:
    host, port = timed_api
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=5) as client:
        for _ in range(3):
            assert client.get("/health").status_code == 200
            time.sleep(READ_TIMEOUT / 2)  # idle between requests is the keep-alive timeout's business


def _send_until_closed(host: str, port: int, head: bytes, chunk: bytes, cap: int) -> tuple[int, bytes]:
    """Send `head` then `chunk` repeatedly until the server closes (or `cap` bytes). Returns (body bytes sent,
    answer)."""
    sent = 0
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.sendall(head)
        sock.settimeout(0.05)
        answer = b""
        try:
            while sent < cap:
                with contextlib.suppress(TimeoutError):
                    sent += sock.send(chunk)
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                answer += data
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(2)
        try:
            while data := sock.recv(65536):
                answer += data
        except (TimeoutError, ConnectionResetError):
            pass
    return sent, answer


@pytest.mark.parametrize("announced", [True, False], ids=["content-length-1GiB", "chunked"])
def test_after_a_413_the_connection_is_closed_not_drained(timed_api: tuple[str, int], announced: bool) -> None:
    host, port = timed_api
    if announced:
        head, chunk = _head(length=1 << 30), b"x" * 65536
    else:
        head = _head(length=None, extra="Transfer-Encoding: chunked\r\n")
        chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
    sent, answer = _send_until_closed(host, port, head, chunk, cap=64 << 20)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert sent < 16 << 20, f"the server read {sent} bytes of a refused body"


def test_beyond_the_connection_cap_requests_get_503_and_are_closed(
    service_env: dict[str, str], redis_server: RedisServer, workdir: Path
) -> None:
    cap = 10
    process, url = _start(
        service_env, redis_server, workdir, "capped-api", API_MAX_CONNECTIONS=str(cap), API_READ_TIMEOUT_SECONDS="30"
    )
    host, port = url.removeprefix("http://").split(":")
    idle = []
    try:
        # uvicorn counts the asking connection too: with cap - 1 others open, it is refused.
        idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(cap - 1)]
        time.sleep(0.3)
        with socket.create_connection((host, int(port)), timeout=5) as extra:
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: loopera\r\n\r\n")
            answer = b""
            while data := extra.recv(65536):
                answer += data  # ends: the server closed the connection
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"connection: close" in answer.lower()
        for sock in idle:
            sock.close()
        idle = []
        time.sleep(0.3)
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    finally:
        for sock in idle:
            sock.close()
        process.stop()
