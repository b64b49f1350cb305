"""Integration fixtures: real redis-server, real uvicorn API and Celery worker processes, loopback fakes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from shared.ledger import hashing_key
from shared.logging import set_correlation_key
from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake
from tests.processes import RedisServer, ServiceProcess, fake_backed_env, start_api, start_worker
from tests.webhooks import APP_SECRET, encode, signed_headers

pytestmark = pytest.mark.integration

# The services key their correlation ids with the message-ref key of their settings (APP_SECRET here): tests that
# find a message's log lines by its correlation id compute it with the same key.
set_correlation_key(hashing_key("", APP_SECRET))


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def graph_fake() -> Iterator[GraphFake]:
    fake = GraphFake()
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture(scope="session")
def groq_fake() -> Iterator[GroqFake]:
    fake = GroqFake()
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A module's private redis-server: the session's shared worker must not take its jobs with other settings."""
    server = RedisServer(tmp_path_factory.mktemp("own-redis"))
    if not server.controllable:
        pytest.skip("needs a redis-server binary for a private server")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API process on the module's own `env` fixture (its settings and its Redis); yields its base URL."""
    process, url = start_api(env, tmp_path_factory.mktemp("module-api") / "api.log")
    yield url
    process.stop()


@pytest.fixture
def rds(own_redis: RedisServer, groq_fake: GroqFake) -> Iterator[redis.Redis]:
    """A client of the module's private Redis, emptied for each test (the fakes are reset by `_clean_state`)."""
    client = redis.Redis.from_url(own_redis.url)
    client.flushdb()
    yield client
    groq_fake.release_chat.set()  # never leave a held chat request behind
    client.close()


@pytest.fixture(scope="session")
def service_env(redis_server: RedisServer, graph_fake: GraphFake, groq_fake: GroqFake) -> dict[str, str]:
    return fake_backed_env(redis_server.url, graph_fake.url, graph_fake.version, groq_fake.url) | {
        "WORKER_CONCURRENCY": "2",
        # The shared Groq budgets (free tier: TTS 10 RPM) would defer jobs for up to a minute in feature tests;
        # test_guarantees.py tests the limiter with its own short windows. 429 cooldowns still apply.
        "RATE_LIMITS_ENABLED": "false",
        # Group messages naming the business are addressed to the bot (GROUP_REPLIES=mention, the default).
        "BUSINESS_DISPLAY_NAME": "Loopera Desk",
    }


@pytest.fixture(scope="session")
def api_service(service_env: dict[str, str], workdir: Path) -> Iterator[tuple[ServiceProcess, str]]:
    process, url = start_api(service_env, workdir / "api.log")
    yield process, url
    process.stop()


@pytest.fixture(scope="session")
def api_url(api_service: tuple[ServiceProcess, str]) -> str:
    return api_service[1]


@pytest.fixture(scope="session")
def worker_service(service_env: dict[str, str], workdir: Path) -> Iterator[ServiceProcess]:
    process = start_worker(service_env, workdir / "worker.log", "--pool", "all", "--concurrency", "2")
    yield process
    process.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with empty Redis and fresh fakes (only for tests that use them)."""
    names = request.fixturenames
    if "redis_server" in names:
        server: RedisServer = request.getfixturevalue("redis_server")
        if server.process is None and server.controllable:
            server.start()  # a previous test stopped it
        redis.Redis.from_url(server.url).flushdb()
    for fake_name in ("graph_fake", "groq_fake"):
        if fake_name in names:
            request.getfixturevalue(fake_name).reset()
    yield


class Webhooks:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=10)

    def post(self, body: dict | bytes, *, ascii_only: bool = True, headers: dict[str, str] | None = None):
        raw = body if isinstance(body, bytes) else encode(body, ascii_only)
        return self.http.post(f"{self.url}/webhook", content=raw, headers=headers or signed_headers(raw))


@pytest.fixture
def webhooks(api_url: str) -> Iterator[Webhooks]:
    client = Webhooks(api_url)
    yield client
    client.http.close()
