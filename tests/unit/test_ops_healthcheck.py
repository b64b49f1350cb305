"""`loopera healthcheck worker`: fresh heartbeat healthy, stale or missing unhealthy; Flower's auth guard."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from loopera.flower import flower_argv
from loopera.healthcheck import check_worker
from shared.config import ConfigError, Settings


def _settings(path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, worker_heartbeat_file=path, worker_heartbeat_max_age_seconds=60, **values)


def test_fresh_heartbeat_is_healthy(tmp_path: Path) -> None:
    beat = tmp_path / "beat"
    beat.touch()
    assert check_worker(_settings(beat))[0] is True


def test_stale_heartbeat_is_unhealthy(tmp_path: Path) -> None:
    beat = tmp_path / "beat"
    beat.touch()
    old = time.time() - 120
    os.utime(beat, (old, old))
    healthy, detail = check_worker(_settings(beat))
    assert healthy is False and "120s ago" in detail


def test_missing_heartbeat_is_unhealthy(tmp_path: Path) -> None:
    assert check_worker(_settings(tmp_path / "none"))[0] is False


def test_flower_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FLOWER_BASIC_AUTH"):
        flower_argv(_settings(tmp_path))


def test_flower_dev_flag_allows_no_auth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    argv = flower_argv(_settings(tmp_path, dev_flower_no_auth=True, port=5566))
    assert argv[0] == "flower" and "--port=5566" in argv
    assert not any("auth" in arg for arg in argv)


def test_flower_credentials_go_by_environment_not_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    argv = flower_argv(_settings(tmp_path, flower_basic_auth=SecretStr("ops:pw")))
    assert os.environ["FLOWER_BASIC_AUTH"] == "ops:pw"
    assert not any("pw" in arg for arg in argv)


def test_flower_rejects_malformed_credentials(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="user:password"):
        flower_argv(_settings(tmp_path, flower_basic_auth=SecretStr("justapassword")))
