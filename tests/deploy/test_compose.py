"""docker-compose.yml: valid against the Compose spec JSON schema (vendored: tests/deploy/compose_spec.json from the
docker-compose 1.29.2 PyPI package, Apache-2.0), plus the properties the deployment relies on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from shared.config import Settings
from tests.deploy.compose import InterpolationError, interpolate
from tests.deploy.dockerfiles import REPO, healthcheck

SCHEMA = json.loads((Path(__file__).parent / "compose_spec.json").read_text())
REQUIRED = {
    "VERIFY_TOKEN": "v",
    "APP_SECRET": "s",
    "PHONE_NUMBER_ID": "1",
    "WHATSAPP_TOKEN": "t",
    "GROQ_API_KEY": "g",
    "FLOWER_BASIC_AUTH": "admin:pw",
}
ROLE_OF_DOCKERFILE = {"Dockerfile.api": "api", "Dockerfile.worker": "worker", "Dockerfile.flower": "flower"}


def load(env: dict[str, str] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return dict(interpolate(raw, REQUIRED if env is None else env))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load()


def test_validates_against_compose_spec(compose: dict[str, Any]) -> None:
    jsonschema.Draft201909Validator(SCHEMA).validate(compose)


def test_schema_rejects_what_compose_rejects(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["depends_on"]["redis"]["condition"] = "service_ready"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(SCHEMA).validate(broken)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_each_required_secret_fails_fast_with_a_message(name: str) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != name}
    with pytest.raises(InterpolationError, match=name) as info:
        load(env)
    assert "set " in str(info.value)  # the message says what to set


def test_redis_is_a_durable_broker(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(v.endswith(":/data") for v in compose["services"]["redis"]["volumes"])


def test_every_service_is_health_checked_and_waits_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = {name: s for name, s in compose["services"].items() if "profiles" not in s}
    assert set(services) == {"redis", "api", "worker-text", "worker-audio", "worker-vision", "flower"}
    for name, service in compose["services"].items():
        assert service["healthcheck"]["test"][0] == "CMD", name
        if name != "redis":
            assert service["depends_on"] == {"redis": {"condition": "service_healthy"}}, name


SENTINELS = "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379"


def test_the_sentinel_profile_adds_two_durable_replicas_and_three_sentinels(compose: dict[str, Any]) -> None:
    profiled = {name: s for name, s in compose["services"].items() if "profiles" in s}
    assert set(profiled) == {"redis-replica-1", "redis-replica-2", "sentinel-1", "sentinel-2", "sentinel-3"}
    assert all(s["profiles"] == ["sentinel"] for s in profiled.values())
    for name in ("redis-replica-1", "redis-replica-2"):
        command = profiled[name]["command"]
        assert command[command.index("--replicaof") + 1 :][:2] == ["redis", "6379"]
        assert command[command.index("--appendonly") + 1] == "yes"
        assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
        assert command[command.index("--replica-announce-ip") + 1] == name  # Sentinel hands out names, not IPs
        assert any(v.endswith(":/data") for v in profiled[name]["volumes"])
    script = profiled["sentinel-1"]["command"][-1]
    assert "sentinel monitor loopera redis 6379 2" in script  # quorum 2 of 3
    assert "exec redis-server /data/sentinel.conf --sentinel" in script
    # The names every service asks the Sentinels for: REDIS_SENTINEL_MASTER and the monitored name agree, and the
    # value documented for REDIS_SENTINELS lists exactly these Sentinels.
    assert compose["services"]["api"]["environment"]["REDIS_SENTINEL_MASTER"] == "loopera"
    assert SENTINELS in (REPO / "docs" / "deployment.md").read_text()
    assert {f"sentinel-{i}" for i in (1, 2, 3)} == {a.split(":")[0] for a in SENTINELS.split(",")}


def test_every_service_follows_the_sentinels_named_in_dotenv() -> None:
    dotenv = REQUIRED | {"REDIS_SENTINELS": SENTINELS, "REDIS_ACK_REPLICAS": ""}
    compose = load(dotenv)
    for name in ("api", "worker-text", "worker-audio", "worker-vision", "flower"):
        env = effective_environment(compose["services"][name], dotenv)
        assert env["REDIS_SENTINELS"] == SENTINELS, name
        assert env["REDIS_SENTINEL_MASTER"] == "loopera", name  # the name the profile's Sentinels monitor
    # An empty REDIS_ACK_REPLICAS in .env means "the default": 1 behind Sentinel.
    assert Settings(_env_file=None, **{"redis_sentinels": SENTINELS, "redis_ack_replicas": ""}).ack_replicas == 1  # type: ignore[call-arg,arg-type]


def test_healthchecks_match_the_images(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            dockerfile = service["build"]["dockerfile"]
            assert (REPO / dockerfile).exists()
            assert service["healthcheck"]["test"][1:] == healthcheck(REPO / dockerfile), name


def test_worker_pools_are_separate_and_audio_scales(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for pool in ("text", "audio", "vision"):
        service = services[f"worker-{pool}"]
        assert service["environment"]["WORKER_POOL"] == pool
        assert int(service["environment"]["WORKER_CONCURRENCY"]) > 0
        # Warm shutdown must outlive the longest job (TASK_TIME_LIMIT).
        assert int(service["stop_grace_period"].rstrip("s")) > Settings().task_time_limit
    audio = services["worker-audio"]
    assert "container_name" not in audio and "ports" not in audio  # --scale would collide on either


def test_environment_names_are_real_settings(compose: dict[str, Any]) -> None:
    """A typo in an env name is silently ignored by pydantic-settings; catch it here."""
    fields = {name.upper() for name in Settings.model_fields}
    for name, service in compose["services"].items():
        for key in service.get("environment", {}):
            assert key in fields, f"{name}: {key} is not a Settings field"


def test_flower_is_not_published_beyond_loopback(compose: dict[str, Any]) -> None:
    for port in compose["services"]["flower"]["ports"]:
        assert port.startswith("127.0.0.1:")


# Settings that a service sets itself in `environment` (they differ per service or point inside the compose network).
PER_SERVICE = {"REDIS_URL", "PORT", "WORKER_POOL", "WORKER_POOL_IMPL", "WORKER_CONCURRENCY", "WORKER_METRICS_PORT"}
PER_SERVICE |= {"REDIS_SENTINEL_MASTER"}  # the name the sentinel profile's Sentinels monitor


def effective_environment(service: dict[str, Any], dotenv: dict[str, str]) -> dict[str, str]:
    """What a container sees, by Compose's rules: `env_file` entries first, `environment` wins over them."""
    files = service.get("env_file", [])
    files = [files] if isinstance(files, str) else files
    env: dict[str, str] = {}
    for name in files:
        assert name == ".env", name  # the only file the documented setup creates
        env |= dotenv
    return env | {key: str(value) for key, value in (service.get("environment") or {}).items()}


def test_every_setting_in_dotenv_reaches_every_service() -> None:
    """Optional settings (CHAT_MODEL, SYSTEM_PROMPT, VOICE_REPLY_LANGUAGES, ...) written in .env must not be
    silently dropped: each one reaches every Loopera container, unless that service sets it itself."""
    dotenv = {name.upper(): f"value-of-{name}" for name in Settings.model_fields} | REQUIRED
    compose = load(dotenv)
    for name, service in compose["services"].items():
        if "build" not in service:
            continue  # Redis nodes and Sentinels, not Loopera containers
        env = effective_environment(service, dotenv)
        lost = sorted(key for key, value in dotenv.items() if key not in PER_SERVICE and env.get(key) != value)
        assert lost == [], f"{name} does not receive {lost}"
