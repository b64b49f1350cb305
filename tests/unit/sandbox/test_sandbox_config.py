"""Which stack `make run` starts, and when the sandbox refuses to start."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from loopera.dev_stack import plan, runs_against_meta, sandbox_env
from sandbox.config import SandboxConfig, SandboxRefusedError
from shared.config import ConfigError, Settings, is_sandbox_token

META = {
    "whatsapp_token": SecretStr("EAAG-real"),
    "app_secret": SecretStr("a" * 32),
    "verify_token": SecretStr("v" * 16),
    "phone_number_id": "123456789012345",
}


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_all_meta_settings_run_against_meta_without_a_sandbox(tmp_path: Path) -> None:
    meta = settings(**META)
    assert runs_against_meta(meta)
    children, overrides = plan(meta, tmp_path)
    assert overrides == {}
    assert [c.name for c in children] == ["api", "text", "audio", "vision"]


@pytest.mark.parametrize("missing", sorted(META))
def test_any_missing_meta_setting_means_the_sandbox(tmp_path: Path, missing: str) -> None:
    values = {k: v for k, v in META.items() if k != missing and k != "whatsapp_token"}
    partial = settings(**values)
    assert not runs_against_meta(partial)
    children, overrides = plan(partial, tmp_path)
    assert children[-1].name == "sandbox"
    assert overrides["SANDBOX"] == "true" and overrides["GRAPH_API_URL"] == "http://127.0.0.1:8001"
    assert is_sandbox_token(overrides["WHATSAPP_TOKEN"]) and overrides["PHONE_NUMBER_ID"].isdigit()
    assert plan(partial, tmp_path)[1]["APP_SECRET"] != overrides["APP_SECRET"]  # generated per run


def test_sandbox_forced_even_with_meta_settings_but_never_with_a_real_token(tmp_path: Path) -> None:
    forced = settings(**META, sandbox=True)
    assert not runs_against_meta(forced)
    with pytest.raises(ConfigError, match="empty WHATSAPP_TOKEN"):
        sandbox_env(forced)


def test_the_sandbox_refuses_a_real_token_and_needs_the_generated_secrets() -> None:
    generated = {
        "whatsapp_token": SecretStr("sandbox-abc"),
        "app_secret": SecretStr("s" * 32),
        "phone_number_id": "100000000000001",
    }
    config = SandboxConfig.from_settings(settings(**generated))
    assert config.groq_key_missing and config.api_url == "http://127.0.0.1:8000" and config.port == 8001
    with pytest.raises(SandboxRefusedError, match="real token"):
        SandboxConfig.from_settings(settings(**{**generated, "whatsapp_token": SecretStr("EAAG-real")}))
    with pytest.raises(SandboxRefusedError, match="APP_SECRET"):
        SandboxConfig.from_settings(settings(**{**generated, "app_secret": SecretStr("")}))
