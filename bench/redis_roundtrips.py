"""Redis round trips and keys per processed message, in the worker, at default settings (rate limits on).

    python -m bench.redis_roundtrips [--compare main] [--messages 20] [--burst-window 0.3]

The job runs in this process against a real redis-server, with the API's own ingest code queueing it and the
loopback Graph and Groq fakes answering; every write a redis-py connection makes is one round trip (a pipeline is
one). Celery's own broker traffic (BRPOP, the ack) is not counted: it is the same before and after. Keys left per
message: messages of one conversation after a first one, so per-conversation keys (memory) do not count; key
families are listed. `--compare REF` measures the code as of that git revision too, in the same run (a subprocess
on a `git archive` of it), and prints both. The measured runs have burst merging off (COALESCE_WINDOW_SECONDS=0, as
the test environment); `--burst-window S` measures this tree again with a window of S seconds, in the same run: a
message alone then waits one deferral (its Celery retry is not counted; the job runs again here after the countdown).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
KINDS = ("text", "voice", "image")


class _Task:
    """The slice of a Celery task the job runner uses."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.request = type("Request", (), {"retries": 0, "id": ""})()

    def retry(self, *, countdown: float, max_retries: int | None) -> Exception:
        return _Deferred(countdown)


class _Deferred(Exception):
    """The job asked Celery to run it again in `countdown` seconds (a deferral: the burst window)."""

    def __init__(self, countdown: float) -> None:
        super().__init__(f"the benchmark's job asked for a retry in {countdown:.1f} s")
        self.countdown = countdown


class _Counter:
    """Counts the writes of every redis-py connection while `active` (one write = one round trip)."""

    def __init__(self) -> None:
        import redis.connection

        self.active = False
        self.trips = 0
        self.commands: list[str] = []
        original = redis.connection.AbstractConnection.send_packed_command
        counter = self

        def counting(conn: Any, command: Any, check_health: bool = True) -> None:
            if counter.active:
                counter.trips += 1
                counter.commands.append(_first_command(command))
            original(conn, command, check_health)

        redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]


def _first_command(packed: Any) -> str:
    chunks = packed if isinstance(packed, list) else [packed]
    raw = b"".join(c if isinstance(c, bytes) else bytes(c) for c in chunks)
    words = [w for w in raw.split(b"\r\n") if w and not w.startswith((b"*", b"$"))]
    return words[0].decode(errors="replace").upper() if words else "?"


def _message(kind: str, sender: str, graph: Any, media: Path) -> dict[str, Any]:
    message: dict[str, Any] = {"from": sender, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time()))}
    if kind == "text":
        return message | {"type": "text", "text": {"body": "Where is my parcel?"}}
    media_id = f"media-{uuid.uuid4().hex[:8]}"
    if kind == "voice":
        graph.add_media(media_id, (media / "voice-en.ogg").read_bytes(), "audio/ogg")
        audio = {"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": media_id, "voice": True}
        return message | {"type": "audio", "audio": audio}
    graph.add_media(media_id, (media / "photo.jpg").read_bytes(), "image/jpeg")
    return message | {"type": "image", "image": {"id": media_id, "mime_type": "image/jpeg", "caption": "What is it?"}}


def measure(messages: int, window: float = 0.0) -> dict[str, Any]:
    """Round trips and keys per message for each kind, with the code importable from sys.path; `window`: the burst
    window (COALESCE_WINDOW_SECONDS; 0 = off)."""
    import redis

    from api.ingest import Ingestor
    from api.webhook_payload import parse_webhook
    from shared.config import Settings
    from shared.jobs import TASK_FOR_QUEUE, Queue
    from shared.logging import configure_logging
    from shared.redis_client import async_redis
    from tests.fakes.graph_fake import GraphFake
    from tests.fakes.groq_fake import GroqFake
    from tests.processes import RedisServer, fake_backed_env
    from tests.webhooks import MEDIA_FIXTURES, message_body
    from workers.context import WorkerContext
    from workers.pipelines.entry import AUDIO_PIPELINE, TEXT_PIPELINE, VISION_PIPELINE
    from workers.runtime.job_runner import run_job

    configure_logging("WARNING")
    counter = _Counter()
    pipelines = {Queue.TEXT: TEXT_PIPELINE, Queue.AUDIO: AUDIO_PIPELINE, Queue.VISION: VISION_PIPELINE}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-roundtrips-") as tmp:
        server, graph, groq = RedisServer(Path(tmp)), GraphFake(), GroqFake()
        server.start()
        graph.server.start()
        groq.server.start()
        try:
            env = fake_backed_env(server.url, graph.url, graph.version, groq.url) | {"LOG_LEVEL": "WARNING"}
            env["COALESCE_WINDOW_SECONDS"] = str(window)
            saved = dict(os.environ)
            os.environ.update(env)
            try:
                settings = Settings(_env_file=None)  # type: ignore[call-arg]
            finally:
                os.environ.clear()
                os.environ.update(saved)
            store = redis.Redis.from_url(server.url)
            ctx = WorkerContext.build(settings)
            parse_args: tuple[Any, ...] = (settings.phone_number_id,)
            if "message_key" in inspect.signature(parse_webhook).parameters:
                parse_args += (settings.message_hashing_key(),)

            def process(kind: str, sender: str) -> tuple[int, list[str]]:
                body = message_body([_message(kind, sender, graph, MEDIA_FIXTURES)], sender=sender)
                contents = parse_webhook(body, *parse_args)

                async def ingest() -> None:
                    ingestor = Ingestor(async_redis(settings), settings.dedupe_ttl_seconds, 60)
                    await ingestor.ingest(contents.jobs)
                    await ingestor.close()

                asyncio.run(ingest())
                [prepared] = contents.jobs
                raw = store.rpop(prepared.queue)
                (payload,) = json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
                queue = Queue(prepared.queue)
                counter.trips, counter.commands, counter.active = 0, [], True
                try:
                    for _ in range(10):
                        try:
                            run_job(_Task(TASK_FOR_QUEUE[queue].value), ctx, payload, pipelines[queue])
                            break
                        except _Deferred as deferred:  # the burst window: Celery would run it again then
                            counter.active = False
                            time.sleep(deferred.countdown)
                            counter.active = True
                finally:
                    counter.active = False
                return counter.trips, counter.commands

            for kind in KINDS:
                sender = f"1555{uuid.uuid4().int % 10**8:08d}"
                process(kind, sender)  # warm: scripts loaded, the conversation's own keys exist
                before = set(store.keys("*"))
                trips: list[int] = []
                commands: list[str] = []
                for _ in range(messages):
                    count, commands = process(kind, sender)
                    trips.append(count)
                added = set(store.keys("*")) - before
                families = Counter(":".join(k.decode().split(":")[:2]) for k in added)
                size = sum(int(store.memory_usage(k) or 0) for k in added)
                results[kind] = {
                    "round_trips": sum(trips) / len(trips),
                    "keys_per_message": len(added) / messages,
                    "bytes_per_message": size / messages,
                    "key_families": dict(families),
                    "commands": commands,
                    "replied": len(graph.sent_messages()),
                }
                graph.reset()
            ctx.close()
            store.close()
        finally:
            groq.server.stop()
            graph.server.stop()
            server.stop()
    return results


def _reference(ref: str, messages: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-roundtrips-ref-") as tmp:
        archive = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--measure-only", "--messages", str(messages)],
            cwd=tmp,
            env={**os.environ, "PYTHONPATH": tmp},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result


def run(messages: int = 20, compare: str | None = None, burst_window: float = 0.0) -> dict[str, Any]:
    results = {"this tree": measure(messages)}
    if burst_window > 0:
        results[f"this tree, burst window {burst_window:g} s"] = measure(messages, burst_window)
    if compare:
        results[f"@{compare}"] = _reference(compare, messages)
    print(f"Redis round trips and keys per message in the worker ({messages} messages per kind, rate limits on)")
    print("| code | kind | round trips | keys left per message | bytes (MEMORY USAGE) | key families left |")
    print("|---|---|---|---|---|---|")
    for code, per_kind in reversed(results.items()):
        for kind in KINDS:
            figures = per_kind[kind]
            families = ", ".join(f"{name} {count / messages:g}" for name, count in figures["key_families"].items())
            trips, keys, size = figures["round_trips"], figures["keys_per_message"], figures.get("bytes_per_message", 0)
            row = f"| {code} | {kind} | {trips:g} | {keys:g} | {size:,.0f} | {families} |"
            print(row)
    for kind in KINDS:
        print(f"this tree, {kind}: {' '.join(results['this tree'][kind]['commands'])}")
    if compare:
        baseline, now = results[f"@{compare}"], results["this tree"]
        ratios = ", ".join(f"{k} {now[k]['round_trips'] / baseline[k]['round_trips']:.2f}x" for k in KINDS)
        print(f"round trips against @{compare} in the same run: {ratios}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--compare", metavar="GIT_REF", help="also measure the code as of this git revision")
    parser.add_argument("--burst-window", type=float, default=0.0, help="also measure with this burst window (s)")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_only:
        print(json.dumps(measure(args.messages)))
    else:
        run(args.messages, args.compare, args.burst_window)


if __name__ == "__main__":
    main()
