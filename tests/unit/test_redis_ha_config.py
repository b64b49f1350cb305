"""Sentinel and replication settings: parsing, defaults, the broker URL Celery gets, doctor's durability verdicts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from loopera.checks import Status
from loopera.doctor_redis import durability
from shared.config import ConfigError, Settings, parse_sentinels
from shared.redis_client import data_node_options
from workers.runtime.celery_app import celery_config


def test_sentinels_parse_as_host_port_pairs() -> None:
    assert parse_sentinels("") == []
    assert parse_sentinels("s1:26379, s2:26380 ,") == [("s1", 26379), ("s2", 26380)]
    assert parse_sentinels("[::1]:26379") == [("::1", 26379)]


@pytest.mark.parametrize("bad", ["s1", "s1:", ":26379", "s1:port"])
def test_a_malformed_sentinel_list_is_refused_at_start(bad: str) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        Settings(_env_file=None, redis_sentinels=bad)  # type: ignore[call-arg]


def test_acknowledgements_wait_for_one_replica_by_default_only_with_sentinel() -> None:
    assert Settings(_env_file=None).ack_replicas == 0  # type: ignore[call-arg]
    assert Settings(_env_file=None, redis_sentinels="s1:26379").ack_replicas == 1  # type: ignore[call-arg]
    explicit = Settings(_env_file=None, redis_sentinels="s1:26379", redis_ack_replicas=0)  # type: ignore[call-arg]
    assert explicit.ack_replicas == 0
    assert Settings(_env_file=None, redis_ack_replicas=2).ack_replicas == 2  # type: ignore[call-arg]


def test_celery_gets_one_sentinel_url_per_sentinel_with_the_data_nodes_credentials_and_db() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        redis_url="redis://app:s3cret@ignored:6379/2",
        redis_sentinels="s1:26379,[::1]:26380",
        redis_sentinel_master="loopera",
        redis_sentinel_password="sentinel-pw",
    )
    config = celery_config(settings)
    assert config["broker_url"] == "sentinel://app:s3cret@s1:26379/2;sentinel://app:s3cret@[::1]:26380/2"
    assert config["broker_transport"] == "workers.runtime.broker:SentinelTransport"
    options = config["broker_transport_options"]
    assert options["master_name"] == "loopera"
    assert options["sentinel_kwargs"]["password"] == "sentinel-pw"
    assert options["visibility_timeout"] == settings.celery_visibility_timeout  # the usual options stay


def test_without_sentinel_celery_keeps_the_plain_redis_transport() -> None:
    config = celery_config(Settings(_env_file=None, redis_url="redis://r:6379/0"))  # type: ignore[call-arg]
    assert config["broker_url"] == "redis://r:6379/0"
    assert config["broker_transport"] == "workers.runtime.broker:Transport"
    assert "master_name" not in config["broker_transport_options"]


def test_behind_sentinel_the_url_gives_only_credentials_and_db() -> None:
    assert data_node_options("redis://app:pw@anything:1234/3") == {"username": "app", "password": "pw", "db": 3}
    for unsupported in ("unix:///run/redis.sock", "rediss://r:6380/0"):
        with pytest.raises(ConfigError):
            data_node_options(unsupported)


@pytest.mark.parametrize(
    ("ack", "online", "aof", "fsync", "status"),
    [
        (1, 0, True, "everysec", Status.FAIL),  # every webhook would answer 503
        (1, 1, True, "everysec", Status.PASS),
        (1, 1, False, "everysec", Status.WARN),  # a primary restarted empty would wipe its replica
        (0, 0, False, "everysec", Status.WARN),  # a restart loses everything since the last snapshot
        (0, 0, True, "everysec", Status.WARN),  # a host crash loses up to a second
        (0, 2, True, "no", Status.WARN),  # replicas the webhook does not wait for do not count
        (0, 0, True, "always", Status.PASS),
    ],
)
def test_doctor_says_when_an_acknowledged_message_can_be_lost(
    ack: int, online: int, aof: bool, fsync: str, status: Status
) -> None:
    result = durability(ack, online, aof, fsync)
    assert result.status is status, result
    assert (result.fix != "") == (status is not Status.PASS)
