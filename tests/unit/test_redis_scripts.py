"""The Lua scripts in shared/scripts/: every one loads in a real Redis, and the results they return are exactly the
members of the one `ScriptResult` enum the API and the workers compare against."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shared.redis_scripts import SCRIPTS_DIR, ScriptName, ScriptResult, lua_source
from tests.processes import RedisServer


def test_every_script_file_is_named_and_every_name_has_a_file() -> None:
    includes = {
        line.split(":", 1)[1].strip()
        for path in SCRIPTS_DIR.glob("*.lua")
        for line in path.read_text().splitlines()
        if line.startswith("-- include:")
    }
    assert includes == {"dispatch", "user_window", "record_status", "pending_writes"}
    files = {path.stem for path in SCRIPTS_DIR.glob("*.lua")} - includes
    assert files == {name.value for name in ScriptName}


def test_scripts_return_only_results_the_enum_defines() -> None:
    used = {match for path in SCRIPTS_DIR.glob("*.lua") for match in re.findall(r"\bR\.([A-Z_]+)", path.read_text())}
    assert used <= set(ScriptResult.__members__)
    assert set(ScriptResult.__members__) <= used  # no result Python waits for that no script returns


def test_each_script_names_its_keys_and_arguments() -> None:
    for name in ScriptName:
        header = (SCRIPTS_DIR / f"{name.value}.lua").read_text().split("\n\n")[0]
        assert "KEYS" in header and "ARGV" in header, name


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    server = RedisServer(Path(tmp_path_factory.mktemp("redis-scripts")))
    server.start()
    connection = redis.Redis.from_url(server.url)
    yield connection
    connection.close()
    server.stop()


@pytest.mark.parametrize("name", list(ScriptName))
def test_every_script_compiles_in_redis(client: redis.Redis, name: ScriptName) -> None:
    assert client.script_load(lua_source(name))


def test_the_source_is_read_once() -> None:
    assert lua_source(ScriptName.CLAIM) is lua_source(ScriptName.CLAIM)
