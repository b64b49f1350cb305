"""`loopera doctor`: every check's pass and fail path, against the loopback Graph/Groq fakes, real redis-server and
the real ffmpeg."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from pydantic import SecretStr

from loopera.doctor import Doctor, Result, Status
from loopera.subscribe import subscribe_fields
from shared.config import Settings
from tests.fakes.graph_fake import APP_ID, PHONE_NUMBER_ID, TOKEN, WABA_ID, GraphFake
from tests.fakes.groq_fake import API_KEY, GroqFake, groq_error
from tests.processes import REPO, RedisServer
from tests.webhooks import APP_SECRET, VERIFY_TOKEN

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(redis_server: RedisServer, graph_fake: GraphFake, groq_fake: GroqFake) -> Settings:
    graph_fake.subscribe_app()
    return Settings(
        _env_file=None,
        verify_token=SecretStr(VERIFY_TOKEN),
        whatsapp_token=SecretStr(TOKEN),
        app_secret=SecretStr(APP_SECRET),
        phone_number_id=PHONE_NUMBER_ID,
        groq_api_key=SecretStr(API_KEY),
        redis_url=redis_server.url,
        graph_api_url=graph_fake.url,
        graph_api_version=graph_fake.version,
        groq_base_url=groq_fake.url,
        waba_id=WABA_ID,
        meta_app_id=APP_ID,
    )


@pytest.fixture
def redis_policy(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("appendonly", "no")
    client.close()


def run(settings: Settings, check: str) -> list[Result]:
    with Doctor(settings) as doctor:
        return doctor.checks()[check]()


def only(results: list[Result], name: str) -> Result:
    matches = [r for r in results if r.check == name]
    assert len(matches) == 1, results
    return matches[0]


# --- env ------------------------------------------------------------------------------------------------------
def test_env_passes_when_complete(settings: Settings) -> None:
    assert {r.status for r in run(settings, "env")} == {Status.PASS}


def test_env_flags_missing_and_placeholder_values(settings: Settings) -> None:
    broken = settings.model_copy(update={"groq_api_key": SecretStr("changeme"), "whatsapp_token": SecretStr("")})
    result = only(run(broken, "env"), "env.required")
    assert result.status is Status.FAIL
    assert "GROQ_API_KEY" in result.detail and "WHATSAPP_TOKEN" in result.detail and result.fix


def test_env_warns_without_diagnostic_ids(settings: Settings) -> None:
    result = only(run(settings.model_copy(update={"waba_id": ""}), "env"), "env.diagnostic")
    assert result.status is Status.WARN and "WABA_ID" in result.detail


# --- PHONE_NUMBER_ID vs WABA id ---------------------------------------------------------------------------------
def test_phone_number_id_passes_for_a_phone_number(settings: Settings) -> None:
    results = run(settings, "phone_number_id")
    assert [r.status for r in results] == [Status.PASS, Status.PASS]
    assert only(results, "graph.phone_in_waba").status is Status.PASS


def test_phone_number_of_another_waba_fails(settings: Settings, graph_fake: GraphFake) -> None:
    graph_fake.phone_numbers["2233445566778"] = "+1 555-000-2222"
    graph_fake.wabas["9988776655"] = ["2233445566778"]  # a second account, e.g. the test number
    result = only(
        run(settings.model_copy(update={"phone_number_id": "2233445566778"}), "phone_number_id"), "graph.phone_in_waba"
    )
    assert result.status is Status.FAIL and PHONE_NUMBER_ID in result.detail


def test_phone_number_id_detects_a_waba_id_and_names_the_right_id(settings: Settings) -> None:
    result = run(settings.model_copy(update={"phone_number_id": WABA_ID}), "phone_number_id")[0]
    assert result.status is Status.FAIL
    assert "WABA" in result.detail
    assert f"PHONE_NUMBER_ID to one of: {PHONE_NUMBER_ID}" in result.fix and f"WABA_ID={WABA_ID}" in result.fix


def test_phone_number_id_unknown_id(settings: Settings) -> None:
    result = run(settings.model_copy(update={"phone_number_id": "555"}), "phone_number_id")[0]
    assert result.status is Status.FAIL and "API Setup" in result.fix


# --- token --------------------------------------------------------------------------------------------------
def test_token_passes_for_a_never_expiring_system_user_token(settings: Settings) -> None:
    results = run(settings, "token")
    assert [r.status for r in results] == [Status.PASS, Status.PASS]
    assert "never expires" in results[0].detail


def test_token_expiring_soon_fails(settings: Settings, graph_fake: GraphFake) -> None:
    graph_fake.token_info["expires_at"] = int(time.time()) + 3600  # a panel token: hours, not forever
    result = only(run(settings, "token"), "graph.token")
    assert result.status is Status.FAIL and "System User" in result.fix


def test_token_expiring_later_warns(settings: Settings, graph_fake: GraphFake) -> None:
    graph_fake.token_info["expires_at"] = int(time.time()) + 60 * 24 * 3600
    assert only(run(settings, "token"), "graph.token").status is Status.WARN


def test_invalid_token_fails(settings: Settings) -> None:
    result = run(settings.model_copy(update={"whatsapp_token": SecretStr("EAAG-expired")}), "token")[0]
    assert result.status is Status.FAIL and "not valid" in result.detail


def test_missing_scope_fails(settings: Settings, graph_fake: GraphFake) -> None:
    graph_fake.token_info["scopes"] = ["whatsapp_business_messaging"]
    result = only(run(settings, "token"), "graph.token_scopes")
    assert result.status is Status.FAIL and "whatsapp_business_management" in result.detail


def test_wrong_app_secret_fails_debug_token(settings: Settings) -> None:
    result = run(settings.model_copy(update={"app_secret": SecretStr("not-the-secret")}), "token")[0]
    assert result.status is Status.FAIL and "META_APP_ID and APP_SECRET" in result.fix


def test_token_check_skipped_without_app_id(settings: Settings) -> None:
    result = run(settings.model_copy(update={"meta_app_id": ""}), "token")[0]
    assert result.status is Status.SKIP and "META_APP_ID" in result.fix


# --- shadow delivery ------------------------------------------------------------------------------------------
def test_subscription_passes_when_subscribed(settings: Settings) -> None:
    assert run(settings, "subscription")[0].status is Status.PASS


def test_shadow_delivery_is_detected(settings: Settings, graph_fake: GraphFake) -> None:
    graph_fake.subscriptions.clear()
    result = run(settings, "subscription")[0]
    assert result.status is Status.FAIL and "loopera subscribe" in result.fix


def test_webhook_fields_warn_without_smb_message_echoes_until_subscribe_adds_them(
    settings: Settings, graph_fake: GraphFake
) -> None:
    """docs/handoff.md: without the field, a person replying from the WhatsApp Business app would not pause the bot."""
    fields = run(settings, "subscription")[1]
    assert (fields.check, fields.status) == ("graph.webhook_fields", Status.WARN)
    assert "smb_message_echoes" in fields.detail and "loopera subscribe" in fields.fix
    with httpx.Client() as client:
        assert subscribe_fields(settings, client) == ["messages", "smb_message_echoes"]
    posted = [r.json for r in graph_fake.requests if r.path.endswith("/subscriptions") and r.method == "POST"]
    assert posted[0]["callback_url"] == "https://bot.example.com/webhook"  # the app's callback is kept
    assert run(settings, "subscription")[1].status is Status.PASS
    graph_fake.webhook_fields = []
    assert run(settings, "subscription")[1].status is Status.FAIL


def test_subscription_of_another_app_does_not_count(settings: Settings) -> None:
    result = run(settings.model_copy(update={"meta_app_id": "111"}), "subscription")[0]
    assert result.status is Status.FAIL


# --- redis ----------------------------------------------------------------------------------------------------
def test_redis_passes_with_noeviction_and_aof(settings: Settings, redis_policy: redis.Redis) -> None:
    redis_policy.config_set("appendonly", "yes")
    assert {r.status for r in run(settings, "redis")} == {Status.PASS}


def test_redis_eviction_policy_fails_and_no_aof_warns(settings: Settings, redis_policy: redis.Redis) -> None:
    redis_policy.config_set("maxmemory-policy", "allkeys-lru")
    results = run(settings, "redis")
    assert only(results, "redis.eviction").status is Status.FAIL
    assert "noeviction" in only(results, "redis.eviction").fix
    assert only(results, "redis.persistence").status is Status.WARN


def test_redis_unreachable_fails(settings: Settings) -> None:
    from tests.fakes.server import free_port

    result = run(settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"}), "redis")[0]
    assert result.status is Status.FAIL and "REDIS_URL" in result.fix


# --- ffmpeg ---------------------------------------------------------------------------------------------------
def test_ffmpeg_with_libopus_passes(settings: Settings) -> None:
    assert run(settings, "ffmpeg")[0].status is Status.PASS


def test_ffmpeg_without_libopus_fails(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "ffmpeg"  # an ffmpeg build without libopus: its encoder list lacks it
    fake.write_text("#!/bin/sh\necho ' A....D aac                  AAC (Advanced Audio Coding)'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run(settings, "ffmpeg")[0]
    assert result.status is Status.FAIL and "libopus" in result.detail


def test_missing_ffmpeg_fails(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert run(settings, "ffmpeg")[0].status is Status.FAIL


# --- groq -----------------------------------------------------------------------------------------------------
def test_groq_key_and_models_pass(settings: Settings) -> None:
    results = run(settings, "groq")
    assert {r.status for r in results} == {Status.PASS}
    assert {r.check for r in results} >= {"groq.key", "groq.model.chat_model", "groq.model.tts_model"}


def test_groq_bad_key_fails(settings: Settings) -> None:
    result = run(settings.model_copy(update={"groq_api_key": SecretStr("gsk_wrong")}), "groq")[0]
    assert result.status is Status.FAIL and "console.groq.com/keys" in result.fix


def test_retired_model_is_flagged_with_its_replacement(settings: Settings) -> None:
    results = run(settings.model_copy(update={"chat_model": "llama-3.3-70b-versatile"}), "groq")
    result = only(results, "groq.model.chat_model")
    assert result.status is Status.FAIL and "retired" in result.detail
    assert result.fix == "Set CHAT_MODEL=openai/gpt-oss-120b."


def test_model_not_served_is_flagged(settings: Settings, groq_fake: GroqFake) -> None:
    groq_fake.models.remove("qwen/qwen3.8-27b")
    try:
        assert only(run(settings, "groq"), "groq.model.vision_model").status is Status.FAIL
    finally:
        groq_fake.models.append("qwen/qwen3.8-27b")


# --- TTS terms ------------------------------------------------------------------------------------------------
def test_tts_terms_accepted(settings: Settings, groq_fake: GroqFake) -> None:
    assert run(settings, "tts_terms")[0].status is Status.PASS
    assert len(groq_fake.calls_to("audio/speech")) == 1


def test_tts_terms_required(settings: Settings, groq_fake: GroqFake) -> None:
    groq_fake.faults.add("speech", groq_error(400, "model_terms_required", "terms must be accepted"))
    result = run(settings, "tts_terms")[0]
    assert result.status is Status.FAIL
    assert result.fix.endswith("https://console.groq.com/playground?model=canopylabs%2Forpheus-v1-english")


# --- the command ----------------------------------------------------------------------------------------------
def _doctor_cli(settings: Settings, *args: str, **env_overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "GROQ_"))}
    env.update(
        {
            "VERIFY_TOKEN": VERIFY_TOKEN,
            "WHATSAPP_TOKEN": TOKEN,
            "APP_SECRET": APP_SECRET,
            "PHONE_NUMBER_ID": settings.phone_number_id,
            "GROQ_API_KEY": API_KEY,
            "REDIS_URL": settings.redis_url,
            "GRAPH_API_URL": settings.graph_api_url,
            "GRAPH_API_VERSION": settings.graph_api_version,
            "GROQ_BASE_URL": settings.groq_base_url,
            "WABA_ID": WABA_ID,
            "META_APP_ID": APP_ID,
            **env_overrides,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "loopera.cli", "doctor", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_json_all_pass(settings: Settings) -> None:
    result = _doctor_cli(settings, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(result.stdout)
    assert {row["status"] for row in rows} <= {"pass", "warn"}  # AOF is off on the test Redis: a warning
    assert {"env.required", "graph.phone_number_id", "graph.token", "graph.subscribed_apps", "redis.eviction"} <= {
        row["check"] for row in rows
    }


def test_cli_table_shows_the_fix_and_exits_1(settings: Settings) -> None:
    result = _doctor_cli(settings, "--skip", "tts_terms", PHONE_NUMBER_ID=WABA_ID)
    assert result.returncode == 1
    assert "FAIL  graph.phone_number_id" in result.stdout
    assert f"fix: Set WABA_ID={WABA_ID}" in result.stdout
    assert "skipped (--skip)" in result.stdout
    assert TOKEN not in result.stdout and APP_SECRET not in result.stdout
