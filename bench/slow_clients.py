"""Slow clients against the API: how long dripping connections stay open, and what they cost everyone else.

N connections each send a webhook head announcing a 5,000-byte body, then drip one byte a second. Measured in the
same run: how long each stays open (against WEBHOOK_BODY_TIMEOUT_SECONDS), what it was answered, the API's memory,
and the latency of ordinary signed webhooks before and during the flood (the baseline is the quiet API).

    python -m bench.slow_clients [--connections 1000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from functools import partial
from pathlib import Path

import httpx

from bench import common
from bench.stack import percentile
from tests.fakes.graph_fake import PHONE_NUMBER_ID
from tests.webhooks import APP_SECRET, VERIFY_TOKEN, encode, message_body, signed_headers, text_message


async def _drip(host: str, port: int, limit: float) -> tuple[float, bytes]:
    """(seconds until the server closed the connection, its answer); `limit` if it was still open then."""
    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    answer = bytearray()

    async def read_until_closed() -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                answer.extend(chunk)

    reading = asyncio.create_task(read_until_closed())
    try:
        writer.write(b"POST /webhook HTTP/1.1\r\nHost: bench\r\nContent-Length: 5000\r\n\r\n")
        while time.monotonic() - started < limit:
            await asyncio.wait([reading], timeout=1.0)
            if reading.done():
                return time.monotonic() - started, bytes(answer)
            with contextlib.suppress(ConnectionError):
                writer.write(b"{")
        return limit, bytes(answer)
    finally:
        reading.cancel()
        writer.close()


async def _ordinary_latencies(url: str, count: int) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(count):
            raw = encode(message_body([text_message("hello")]))
            started = time.perf_counter()
            response = await client.post("/webhook", content=raw, headers=signed_headers(raw))
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
    return latencies


async def _flood(url: str, connections: int, limit: float, api_pid: int) -> dict[str, object]:
    host, port = url.removeprefix("http://").split(":")
    quiet = await _ordinary_latencies(url, 50)
    drips = [asyncio.create_task(_drip(host, int(port), limit)) for _ in range(connections)]
    await asyncio.sleep(1.0)  # every dripping connection is open and waiting
    peak_rss = common.memory_mb(api_pid)[0]
    during = await _ordinary_latencies(url, 50)
    peak_rss = max(peak_rss, common.memory_mb(api_pid)[0])
    closed = await asyncio.gather(*drips)
    seconds = sorted(took for took, _ in closed)
    return {
        "quiet_p50": percentile(quiet, 50),
        "during_p50": percentile(during, 50),
        "during_p99": percentile(during, 99),
        "close_p50": percentile(seconds, 50),
        "close_max": seconds[-1],
        "still_open": sum(1 for took in seconds if took >= limit),
        "answered_408": sum(1 for _, answer in closed if answer.startswith(b"HTTP/1.1 408")),
        "rss_mb": peak_rss,
    }


def run(connections: int = 1000, quick: bool = False) -> dict[str, object]:
    body_timeout = 1.0 if quick else 10.0
    limit = body_timeout * 3 + 5  # how long we watch a connection before calling it "still open"
    facts = common.machine()
    with tempfile.TemporaryDirectory(prefix="bench-slow-") as tmp:
        workdir = Path(tmp)
        redis_server = common.Redis(workdir)
        env = common.python_env(
            REDIS_URL=redis_server.url,
            APP_SECRET=APP_SECRET,
            VERIFY_TOKEN=VERIFY_TOKEN,
            PHONE_NUMBER_ID=PHONE_NUMBER_ID,
            WEBHOOK_BODY_TIMEOUT_SECONDS=str(body_timeout),
            API_MAX_CONNECTIONS=str(max(1000, connections * 2)),
            LOG_LEVEL="ERROR",
        )
        argv = partial(common.pinned, common.SERVER_CORE)(common.py("-m", "loopera.cli", "api", "--host", "127.0.0.1"))
        try:
            with common.running(common.start_service(argv, env, workdir / "api.log")) as api:
                rss_idle = common.memory_mb(api.pid())[0]
                result = asyncio.run(_flood(api.url, connections, limit, api.pid()))
        finally:
            redis_server.stop()
    result |= {"connections": connections, "body_timeout": body_timeout, "rss_idle_mb": rss_idle}
    facts["clients"] = f"{connections} connections dripping 1 byte/s into a 5,000-byte webhook body"
    common.print_header("Slow clients: dripping connections against the API (same run)", facts)
    ratio = float(str(result["during_p50"])) / float(str(result["quiet_p50"]))
    common.print_table(
        ["measure", "value", "baseline", "x baseline"],
        [
            ["dripping connection open, p50", f"{result['close_p50']:.2f} s", f"timeout {body_timeout:g} s", ""],
            ["dripping connection open, max", f"{result['close_max']:.2f} s", f"timeout {body_timeout:g} s", ""],
            ["still open after watching", f"{result['still_open']} of {connections}", f"{limit:g} s watched", ""],
            ["answered 408", f"{result['answered_408']} of {connections}", "", ""],
            [
                "ordinary webhook p50",
                f"{float(str(result['during_p50'])) * 1000:.2f} ms",
                f"{float(str(result['quiet_p50'])) * 1000:.2f} ms quiet",
                f"{ratio:.2f}",
            ],
            ["ordinary webhook p99 during", f"{float(str(result['during_p99'])) * 1000:.2f} ms", "", ""],
            ["API RSS", f"{result['rss_mb']:.0f} MiB", f"{rss_idle:.0f} MiB idle", ""],
        ],
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="50 connections and a 1 s timeout: proves it runs")
    args = parser.parse_args()
    run(50 if args.quick else args.connections, args.quick)


if __name__ == "__main__":
    main()
