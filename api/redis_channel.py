"""One multiplexed Redis connection for the webhook's only hot command: EVALSHA of the ingest script.

Why not redis-py here: its asyncio client checks a connection out of a pool per command, wraps it in retry and
health-check logic and re-encodes every argument; on the ack path that was about a third of the API's CPU. Here
every concurrent webhook writes its command onto the same socket (Redis answers in order, so a FIFO of futures
matches replies to callers) and hiredis parses the replies. Under load this pipelines naturally: one syscall
carries many webhooks.

Failure semantics match what the webhook needs: any error raises a redis-py exception (the caller answers 503 and
Meta redelivers); a timeout or a lost connection closes the socket and fails every pending caller, and the next
call reconnects. The ingest script is atomic and idempotent (SET NX dedupe), so the one retry after a connection
error can at worst report messages as duplicates that the first attempt had already queued.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections import deque
from typing import Any, cast

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

# URL options this channel implements; anything else (TLS, client certs, ...) stays with redis-py.
_SUPPORTED_OPTIONS = frozenset({"host", "port", "db", "username", "password", "path", "connection_class"})


def supports_url(url: str) -> bool:
    options = parse_url(url)
    cls = options.get("connection_class")
    plain = cls is None or cls.__name__ == "UnixDomainSocketConnection"
    return plain and set(options) <= _SUPPORTED_OPTIONS


def encode_command(args: list[bytes]) -> bytes:
    """RESP2 array of bulk strings; each argument (an envelope can be kilobytes) is copied once, by the join."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts += (b"$%d\r\n" % len(arg), arg, b"\r\n")
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(protocolError=InvalidResponse, replyError=ResponseError)
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.unsent: list[bytes] = []

    def send(self, payload: bytes) -> None:
        """Queue a command; everything queued in one event-loop pass leaves in one write (fewer syscalls here and
        fewer reads in Redis, at the cost of one loop pass of latency)."""
        if not self.unsent:
            asyncio.get_running_loop().call_soon(self._flush)
        self.unsent.append(payload)

    def _flush(self) -> None:
        unsent, self.unsent = self.unsent, []
        if unsent and self.transport is not None and not self.lost:
            self.transport.write(unsent[0] if len(unsent) == 1 else b"".join(unsent))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiters = self.waiters
        try:
            while (reply := self.reader.gets()) is not False:
                waiter = waiters.popleft()
                if not waiter.done():  # its caller timed out: the reply is simply dropped
                    waiter.set_result(reply)
        except (InvalidResponse, IndexError) as exc:
            # A garbled stream or a reply nobody asked for: nothing after this can be matched to a caller.
            self.fail(RedisConnectionError(f"protocol error: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError("connection to Redis lost"))

    def fail(self, error: Exception) -> None:
        self.lost = True
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        if self.transport is not None:
            self.transport.close()


class ScriptChannel:
    """Runs one Lua script over one shared connection (EVALSHA, falling back to EVAL after a NOSCRIPT)."""

    def __init__(self, url: str, script: str, timeout: float = 2.0) -> None:
        self._options = parse_url(url)
        self._script = script.encode()
        self._sha = hashlib.sha1(self._script, usedforsecurity=False).hexdigest().encode()
        self._timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting = asyncio.Lock()

    async def _connect(self) -> _Protocol:
        async with self._connecting:
            if self._protocol is not None and not self._protocol.lost:
                return self._protocol
            loop = asyncio.get_running_loop()
            opts = self._options
            try:
                if "path" in opts:
                    connecting = loop.create_unix_connection(_Protocol, opts["path"])
                else:
                    connecting = loop.create_connection(
                        _Protocol, opts.get("host", "localhost"), opts.get("port", 6379)
                    )
                _, protocol = await asyncio.wait_for(connecting, self._timeout)
            except (OSError, TimeoutError) as exc:
                raise RedisConnectionError(f"cannot connect to Redis: {type(exc).__name__}") from exc
            hello: list[list[bytes]] = []
            if opts.get("password"):
                user = [opts["username"].encode()] if opts.get("username") else []
                hello.append([b"AUTH", *user, opts["password"].encode()])
            if opts.get("db"):
                hello.append([b"SELECT", str(opts["db"]).encode()])
            for command in hello:
                reply = await self._roundtrip(protocol, encode_command(command))
                if isinstance(reply, ResponseError):
                    protocol.fail(RedisConnectionError(str(reply)))
                    raise RedisConnectionError(f"Redis refused the connection setup: {reply}")
            self._protocol = protocol
            return protocol

    async def _roundtrip(self, protocol: _Protocol, payload: bytes) -> Any:
        if protocol.lost or protocol.transport is None:
            raise RedisConnectionError("connection to Redis lost")
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        protocol.waiters.append(waiter)
        protocol.send(payload)
        # One timer per call is much cheaper than asyncio.wait_for; a timeout closes the connection, because an
        # unanswered command means it is hung or half-open.
        timer = asyncio.get_running_loop().call_later(self._timeout, _expire, protocol, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    async def _call(self, command: bytes) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.lost:
            protocol = await self._connect()
        return await self._roundtrip(protocol, command)

    async def run(self, keys: list[bytes], args: list[bytes]) -> Any:
        """The script's reply; raises redis.exceptions errors (ConnectionError, TimeoutError, ResponseError)."""
        tail = [str(len(keys)).encode(), *keys, *args]
        try:
            reply = await self._call(encode_command([b"EVALSHA", self._sha, *tail]))
        except RedisConnectionError:
            reply = await self._call(encode_command([b"EVALSHA", self._sha, *tail]))  # one reconnect, like redis-py
        if isinstance(reply, ResponseError):
            if not str(reply).startswith("NOSCRIPT"):
                raise reply
            # Redis restarted or flushed its script cache; nothing ran. EVAL also caches it for the next call.
            reply = await self._call(encode_command([b"EVAL", self._script, *tail]))
            if isinstance(reply, ResponseError):
                raise reply
        return reply

    async def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None


def _expire(protocol: _Protocol, waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(RedisTimeoutError("Redis did not answer in time"))
        protocol.fail(RedisConnectionError("connection closed after a timeout"))
