from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.app import check_api_settings
from shared.config import WORKER_SECRETS, ConfigError, Settings, is_placeholder


def settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "verify_token": "v-token",
        "app_secret": "a-secret",
        "phone_number_id": "123",
        "whatsapp_token": "EAAG-token",
        "groq_api_key": "gsk_key",
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


@pytest.mark.parametrize("value", ["", "changeme", "your_token", "<APP_SECRET>", "  ", "CHANGETHIS"])
def test_placeholders_are_recognised(value: str) -> None:
    assert is_placeholder(value)


def test_api_refuses_to_start_without_app_secret() -> None:
    with pytest.raises(ConfigError, match="APP_SECRET"):
        check_api_settings(settings(app_secret=""))


def test_insecure_flag_allows_missing_app_secret() -> None:
    check_api_settings(settings(app_secret="", dev_insecure_skip_signature=True))


def test_placeholder_verify_token_fails_fast_with_the_variable_name() -> None:
    with pytest.raises(ConfigError, match="VERIFY_TOKEN"):
        check_api_settings(settings(verify_token="changeme"))


def test_worker_secrets_are_required() -> None:
    with pytest.raises(ConfigError, match="GROQ_API_KEY"):
        settings(groq_api_key="").require(WORKER_SECRETS, "The worker")
    settings().require(WORKER_SECRETS, "The worker")


def test_env_names_of_the_original_bot_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "VERIFY_TOKEN": "vt",
        "WHATSAPP_TOKEN": "wt",
        "APP_SECRET": "as",
        "PHONE_NUMBER_ID": "42",
        "GROQ_API_KEY": "gk",
        "REDIS_URL": "redis://r:1/2",
        "PORT": "9999",
        "GROQ_BASE_URL": "http://127.0.0.1:1/",
        "CHAT_MODEL": "m1",
    }.items():
        monkeypatch.setenv(name, value)
    loaded = Settings(_env_file=None)  # type: ignore[call-arg]
    assert loaded.port == 9999 and loaded.phone_number_id == "42" and loaded.redis_url == "redis://r:1/2"
    assert loaded.app_secret.get_secret_value() == "as"
    assert loaded.groq_base_url == "http://127.0.0.1:1"  # trailing slash stripped: the SDK appends /openai/v1
    assert loaded.chat_model == "m1"
    assert loaded.graph_api_version != "v21.0"


def test_system_prompt_from_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "persona.txt"
    path.write_text("You are Loopy.\n")
    assert settings(system_prompt_file=path).resolved_system_prompt() == "You are Loopy."
    assert "same language" in settings().resolved_system_prompt()


def test_a_ledger_must_outlive_every_run_of_its_job() -> None:
    with pytest.raises(ValidationError, match="MESSAGE_LEDGER_TTL_SECONDS"):
        Settings(_env_file=None, message_ledger_ttl_seconds=3600, task_deadline_seconds=3500)  # type: ignore[call-arg]
    assert Settings(_env_file=None).message_ledger_ttl_seconds > 900 + 360  # type: ignore[call-arg]
