"""Crafted media on a real worker process: every user gets a polite answer, and the worker's own peak memory and
CPU time stay flat, because parsing is linear and decoding happens in children under a work budget.

One worker process (the threads pool, as compose runs the vision pool) on its own Redis database, so its
/proc/<pid>/status VmHWM and /proc/<pid>/stat CPU counters are the whole worker's; the decoder children's CPU
shows in its reaped-children counters.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import media_attacks
from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import wait_for
from tests.integration.conftest import Webhooks
from tests.processes import RedisServer, ServiceProcess, start_api, start_worker
from tests.webhooks import MEDIA_FIXTURES, media_message, message_body
from workers.text.phrases import PHRASES

pytestmark = pytest.mark.integration

MB = 1024 * 1024
CPU_BUDGET = 3  # MEDIA_CPU_SECONDS of the test worker
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Stack:
    webhooks: Webhooks
    worker: ServiceProcess


@pytest.fixture(scope="module")
def stack(service_env: dict[str, str], workdir: Path, redis_server: RedisServer) -> Iterator[Stack]:
    env = {
        **service_env,
        "REDIS_URL": redis_server.url.rsplit("/", 1)[0] + "/4",
        "MEDIA_CPU_SECONDS": str(CPU_BUDGET),
        "LOG_LEVEL": "INFO",
    }
    api, api_url = start_api(env, workdir / "budget-api.log")
    worker = start_worker(
        env, workdir / "budget-worker.log", "--pool", "all", "--pool-impl", "threads", "--concurrency", "6"
    )
    hooks = Webhooks(api_url)
    yield Stack(hooks, worker)
    hooks.http.close()
    worker.stop()
    api.stop()


def peak_memory(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU seconds, its reaped children's), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    children = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
    return own, children


def send_all(stack: Stack, graph_fake: GraphFake, cases: list[tuple[str, str, bytes, str]], first: int) -> list[str]:
    users = []
    for index, (kind, mime_type, data, _) in enumerate(cases):
        user = f"1555010{first + index}"
        media_id = f"budget-{uuid.uuid4().hex[:8]}"
        graph_fake.add_media(media_id, data, mime_type)
        message = media_message(user, kind, media_id, mime_type, caption="What is this?" if kind == "image" else "")
        assert stack.webhooks.post(message_body([message], sender=user)).status_code == 200
        users.append(user)
    return users


def test_crafted_media_get_polite_replies_while_the_worker_stays_flat(
    stack: Stack, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    pid = stack.worker.process.pid if stack.worker.process else 0
    photo = (MEDIA_FIXTURES / "photo.jpg").read_bytes()
    # Warm-up: a normal photo and voice note, so the baseline includes what any first job loads.
    voice = (MEDIA_FIXTURES / "voice-en.ogg").read_bytes()
    warm = send_all(stack, graph_fake, [("image", "image/jpeg", photo, ""), ("audio", "audio/ogg", voice, "")], 8000)
    for user in warm:
        wait_for(lambda user=user: [m for m in graph_fake.sent_messages() if m.get("to") == user], timeout=60)
    memory_before = peak_memory(pid)
    own_before, children_before = cpu_seconds(pid)

    too_large, unreadable, not_understood = (
        PHRASES["image_too_large"]["en"],
        PHRASES["image_unreadable"]["en"],
        PHRASES["voice_not_understood"]["en"],
    )
    bomb = media_attacks.pixel_bomb_png()  # 59 MP in 190 KB: took the worker from 0.4 to 1.3 GB, four to 4.2 GB
    cases = [
        *[("image", "image/png", bomb, too_large)] * 4,
        ("image", "image/jpeg", media_attacks.jpeg_header_claiming(60000, 60000), too_large),
        ("image", "image/png", media_attacks.lying_header_png(20000, 20000), too_large),
        ("image", "image/jpeg", media_attacks.truncated(photo), unreadable),
        ("audio", "audio/ogg", media_attacks.overlapping_pages_ogg(16 * MB - 4096), not_understood),
        ("audio", "audio/ogg", media_attacks.empty_pages_ogg(16 * MB - 4096), not_understood),
        ("audio", "audio/mpeg", b"\xff\xfb\x90\x00" + os.urandom(2 * MB), not_understood),
    ]
    users = send_all(stack, graph_fake, cases, first=8100)
    for user, (_, _, _, expected) in zip(users, cases, strict=True):
        assert wait_for(lambda user=user: graph_fake.texts_to(user), timeout=90, what="a polite reply") == [expected]
    assert len(groq_fake.calls_to("audio/transcriptions")) == 1  # the warm-up note's: no crafted audio reached it

    own_after, children_after = cpu_seconds(pid)
    growth = peak_memory(pid) - memory_before
    print(
        f"\nworker peak memory +{growth / MB:.0f} MB, own CPU {own_after - own_before:.2f} s, "
        f"decoder children CPU {children_after - children_before:.2f} s"
    )
    # Decoded in the worker itself, one 59 MP PNG adds ~450 MB to it (bench/media_budget.py).
    assert growth < 120 * MB
    assert own_after - own_before < 20  # downloads, base64 and JSON of ~35 MB of media, and the page walks
    assert children_after - children_before < len(cases) * (CPU_BUDGET + 1)
