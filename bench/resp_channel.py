"""A hand-written RESP client for the ingest script, for the ack benchmark's client comparison only: every concurrent
webhook writes its EVALSHA onto one shared socket (Redis answers in order, so a FIFO of futures matches replies to
callers), hiredis parses the replies, and each flushed batch can end with one WAIT.

The API runs redis.asyncio instead (api/redis_channel.py): this client was 1.16x cheaper per ack, less than the
25 % that would justify keeping our own protocol code next to a well-kept library (docs/performance.md). No
Sentinel, no TLS: plain `redis://` and `unix://` URLs.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections import deque
from dataclasses import dataclass
from typing import Any, cast

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

# URL options this channel implements; anything else (TLS, client certs, ...) stays with redis-py.
_SUPPORTED_OPTIONS = frozenset({"host", "port", "db", "username", "password", "path", "connection_class"})


class NotReplicatedError(RedisError):
    """The write reached the primary but fewer replicas than REDIS_ACK_REPLICAS confirmed it in time."""


def check_replicas(replicas: Any, required: int) -> None:
    """Judge a WAIT reply: the number of replicas that confirmed, or the error that replaced it. Raises
    NotReplicatedError when too few confirmed, ConnectionError when the connection died first (worth one retry)."""
    if isinstance(replicas, RedisConnectionError):
        raise RedisConnectionError(f"connection lost before WAIT answered: {replicas}") from replicas
    if isinstance(replicas, Exception):
        raise NotReplicatedError(f"WAIT did not answer: {replicas}") from replicas
    if int(replicas) < required:
        raise NotReplicatedError(f"{replicas} of {required} replicas confirmed the write in time")


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
    def __init__(self, wait_command: bytes = b"") -> None:
        self.reader = hiredis.Reader(protocolError=InvalidResponse, replyError=ResponseError)
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.unsent: list[bytes] = []
        self.wait_command = wait_command
        # The WAIT reply of the batch being collected: an int, or the error that ended the connection (a result,
        # never an exception: a batch's WAIT may have no one left to await it).
        self.batch_ack: asyncio.Future[Any] | None = None
        self.acks: set[asyncio.Future[Any]] = set()  # the WAIT futures among `waiters`

    def send(self, payload: bytes, acked: bool = False) -> asyncio.Future[Any] | None:
        """Queue a command; everything queued in one event-loop pass leaves in one write (fewer syscalls here and
        fewer reads in Redis, at the cost of one loop pass of latency). `acked`: the batch ends with one WAIT,
        whose future is returned."""
        if not self.unsent:
            asyncio.get_running_loop().call_soon(self._flush)
        self.unsent.append(payload)
        if not acked or not self.wait_command:
            return None
        if self.batch_ack is None:
            self.batch_ack = asyncio.get_running_loop().create_future()
        return self.batch_ack

    def _flush(self) -> None:
        unsent, self.unsent = self.unsent, []
        ack, self.batch_ack = self.batch_ack, None
        if not unsent or self.transport is None or self.lost:
            if ack is not None and not ack.done():
                ack.set_result(RedisConnectionError("connection to Redis lost"))
            return
        if ack is not None:
            unsent.append(self.wait_command)
            self.waiters.append(ack)  # after the batch's own waiters: replies come back in this order
            self.acks.add(ack)
            ack.add_done_callback(self.acks.discard)
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
        acks = [self.batch_ack] if self.batch_ack is not None else []
        self.batch_ack = None
        while self.waiters:
            waiter = self.waiters.popleft()
            if waiter in self.acks:
                acks.append(waiter)
            elif not waiter.done():
                waiter.set_exception(error)
        for ack in acks:
            if not ack.done():
                ack.set_result(error)
        if self.transport is not None:
            self.transport.close()


@dataclass(frozen=True)
class Address:
    host: str = "localhost"
    port: int = 6379
    path: str | None = None


class PrimaryLocator:
    """REDIS_URL's server (the benchmark needs no Sentinel)."""

    def __init__(self, url: str) -> None:
        options = parse_url(url)
        self._fixed = Address(options.get("host", "localhost"), int(options.get("port", 6379)), options.get("path"))
        self.follows_sentinel = False

    async def address(self) -> Address:
        return self._fixed

    async def close(self) -> None:
        return None


class ScriptChannel:
    """Runs one Lua script over one shared connection (EVALSHA, falling back to EVAL after a NOSCRIPT).

    `locator` says where to connect (default: REDIS_URL's server); `ack_replicas` > 0 ends every flushed batch with
    one WAIT for that many replicas, up to `ack_wait_ms`."""

    def __init__(
        self,
        url: str,
        script: str,
        timeout: float = 2.0,
        *,
        locator: PrimaryLocator | None = None,
        ack_replicas: int = 0,
        ack_wait_ms: int = 500,
    ) -> None:
        self._options = parse_url(url)
        self._locator = locator or PrimaryLocator(url)
        self._script = script.encode()
        self._sha = hashlib.sha1(self._script, usedforsecurity=False).hexdigest().encode()
        self._timeout = timeout
        self._ack_replicas = ack_replicas
        self._wait = encode_command([b"WAIT", b"%d" % ack_replicas, b"%d" % ack_wait_ms]) if ack_replicas else b""
        # A batch's callers also wait for its WAIT, which Redis holds for up to ack_wait_ms.
        self._call_timeout = timeout + (ack_wait_ms / 1000 if ack_replicas else 0.0)
        self._protocol: _Protocol | None = None
        self._connecting = asyncio.Lock()

    async def _connect(self) -> _Protocol:
        async with self._connecting:
            if self._protocol is not None and not self._protocol.lost:
                return self._protocol
            loop = asyncio.get_running_loop()
            address = await self._locator.address()
            wait = self._wait

            def protocol_factory() -> _Protocol:
                return _Protocol(wait)

            try:
                if address.path is not None:
                    connecting = loop.create_unix_connection(protocol_factory, address.path)
                else:
                    connecting = loop.create_connection(protocol_factory, address.host, address.port)
                _, protocol = await asyncio.wait_for(connecting, self._timeout)
            except (OSError, TimeoutError) as exc:
                raise RedisConnectionError(f"cannot connect to Redis: {type(exc).__name__}") from exc
            await self._hello(protocol)
            self._protocol = protocol
            return protocol

    async def _hello(self, protocol: _Protocol) -> None:
        """AUTH and SELECT from the URL; behind Sentinel also ROLE, so a primary that was just demoted (and that a
        Sentinel still names for a moment) is never written to."""
        opts = self._options
        hello: list[list[bytes]] = []
        if opts.get("password"):
            user = [opts["username"].encode()] if opts.get("username") else []
            hello.append([b"AUTH", *user, opts["password"].encode()])
        if opts.get("db"):
            hello.append([b"SELECT", str(opts["db"]).encode()])
        if self._locator.follows_sentinel:
            hello.append([b"ROLE"])
        for command in hello:
            reply, _ = await self._roundtrip(protocol, encode_command(command))
            if isinstance(reply, ResponseError):
                protocol.fail(RedisConnectionError(str(reply)))
                raise RedisConnectionError(f"Redis refused the connection setup: {reply}")
            if command[0] == b"ROLE" and (not isinstance(reply, list) or reply[0] != b"master"):
                protocol.fail(RedisConnectionError("not a primary"))
                raise RedisConnectionError("the Sentinels named a server that is not a primary (failover under way)")

    async def _roundtrip(self, protocol: _Protocol, payload: bytes, acked: bool = False) -> tuple[Any, Any]:
        """(reply, the batch's WAIT reply or None). Replies that are Redis errors are returned, not raised."""
        if protocol.lost or protocol.transport is None:
            raise RedisConnectionError("connection to Redis lost")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        protocol.waiters.append(waiter)
        ack = protocol.send(payload, acked)
        # One timer per call is much cheaper than asyncio.wait_for; a timeout closes the connection, because an
        # unanswered command means it is hung or half-open.
        timer = loop.call_later(self._call_timeout, _expire, protocol, waiter)
        try:
            reply = await waiter
            return reply, (await ack if ack is not None else None)
        finally:
            timer.cancel()

    async def _call(self, command: bytes) -> tuple[Any, Any]:
        protocol = self._protocol
        if protocol is None or protocol.lost:
            protocol = await self._connect()
        return await self._roundtrip(protocol, command, acked=True)

    async def _run_once(self, tail: list[bytes]) -> Any:
        reply, replicas = await self._call(encode_command([b"EVALSHA", self._sha, *tail]))
        if isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT"):
            # Redis restarted or flushed its script cache; nothing ran. EVAL also caches it for the next call.
            reply, replicas = await self._call(encode_command([b"EVAL", self._script, *tail]))
        if isinstance(reply, ResponseError):
            if str(reply).startswith("READONLY"):
                # A former primary, demoted by a failover: drop it, so the retry asks the Sentinels again.
                if self._protocol is not None:
                    self._protocol.fail(RedisConnectionError("connected to a replica"))
                raise RedisConnectionError("the connected Redis is a replica now")
            raise reply
        if replicas is not None:
            check_replicas(replicas, self._ack_replicas)
        return reply

    async def run(self, keys: list[bytes], args: list[bytes]) -> Any:
        """The script's reply once it is on the primary (and, with `ack_replicas`, on that many replicas).
        Raises redis.exceptions errors (ConnectionError, TimeoutError, ResponseError) or NotReplicatedError."""
        tail = [str(len(keys)).encode(), *keys, *args]
        try:
            return await self._run_once(tail)
        except RedisConnectionError:
            return await self._run_once(tail)  # one reconnect, like redis-py (a restarted or failed-over primary)

    async def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
        await self._locator.close()


def _expire(protocol: _Protocol, waiter: asyncio.Future[Any]) -> None:
    """The call's reply (or its batch's WAIT) did not come in time: the connection is hung or half-open."""
    if not waiter.done():
        waiter.set_exception(RedisTimeoutError("Redis did not answer in time"))
    protocol.fail(RedisTimeoutError("connection closed after a timeout"))
