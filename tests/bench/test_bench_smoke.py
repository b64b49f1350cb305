"""The benchmarks run, end to end, on a tiny load. Figures are never asserted (they belong in bench/, not CI);
what is asserted is that each benchmark measured something real: 200s, jobs in Redis, replies at the Graph fake."""

from __future__ import annotations

import shutil

import pytest

from bench import ack_path, end_to_end, memory, slow_clients

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _tools() -> None:
    if shutil.which("wrk") is None or shutil.which("redis-server") is None:
        pytest.skip("the benchmarks need wrk and redis-server (CI installs both: .ci/run)")


@pytest.mark.timeout(300)  # eight servers (the floor, the API and its variants) start on a 2-core machine
def test_ack_path_benchmark_runs_and_its_acks_are_durable(capsys: pytest.CaptureFixture[str]) -> None:
    results = ack_path.run(1.0, 8, quick=True)
    out = capsys.readouterr().out
    assert "Ack path" in out and "date:" in out and "floor (bare ASGI)" in out
    assert [r["payload"] for r in results[:2]] == ["single text message", "100-message batch"]
    for result in results:
        assert float(str(result["api_rps"])) > 0, result
    for result in results[:2]:
        assert result["durable"] is True, result  # every acked message found as a job in Redis
    # The same run measured each Redis durability mode and each installed ingest client, durably too.
    variants = {str(r["variant"]): r for r in results if "variant" in r}
    assert "primary + 1 replica, AOF everysec, WAIT 1" in variants and "1 Redis, AOF always" in variants
    assert "redis.asyncio, one pipeline per loop pass (the API's)" in variants
    for name, result in variants.items():
        assert float(str(result["api_rps"])) > 0 and result["durable"] is True, name


def test_end_to_end_benchmark_runs_and_every_message_is_answered(capsys: pytest.CaptureFixture[str]) -> None:
    rows = end_to_end.run(3, 6, (("threads", 2),))
    assert "End to end" in capsys.readouterr().out
    assert [row[2] for row in rows] == [3, 6]
    assert [row[-1] for row in rows] == [0, 0]  # no non-200 acks


@pytest.mark.timeout(300)  # starts the API and two workers; a smoke run, nothing here is timed
def test_memory_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    rows = memory.run(0.01, quick=True)
    assert "Memory" in capsys.readouterr().out
    assert [row[0] for row in rows] == ["API (uvicorn)", "text worker", "text worker"]
    for row in rows:
        assert float(str(row[3])) > 10  # an idle RSS in MiB was read from /proc


@pytest.mark.timeout(300)  # three worker starts; a smoke run on a loaded machine, nothing here is timed
def test_voice_latency_benchmark_runs_every_mode(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import voice_latency

    rows = voice_latency.run(1, voice_latency.Holds(0.05, 0.05, 0.2, 0.05), chunk_counts=(2,))
    out = capsys.readouterr().out
    assert "Voice reply latency" in out and "2-chunk TTS stage" in out
    modes = ("sequential", "concurrent", "concurrent, levelling off")
    assert [(row[0], row[1]) for row in rows] == [(mode, 2) for mode in modes]
    for row in rows:
        assert float(str(row[-2])) > 0  # a total was measured, webhook to voice note


def test_media_budget_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import media_budget

    tables = media_budget.run(quick=True)
    assert "Ogg duration" in capsys.readouterr().out
    [(_, _, _, walk_says, _, _, ffprobe_says, _)] = tables["ogg"]
    assert float(walk_says.split()[0]) == pytest.approx(float(ffprobe_says), abs=0.05)  # both read the same note
    assert {row[2] for row in tables["crafted_ogg"]} == {"ImplausibleOggError"}
    assert all(row[3] == "reads it" for row in tables["wav"][1:])
    said = {row[0]: row[4] for row in tables["images"]}
    assert said["59 MP PNG of 190 KB (pixel bomb)"] == "image_too_large"
    assert said["photo 640x480 JPEG (passes through)"] == "decoded"


def test_flower_view_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import flower_view

    rates = flower_view.run(1.0, 1, quick=True)
    assert "Flower task-sent events" in capsys.readouterr().out
    assert set(rates) == {"events on", "events off"}
    assert all(rate > 0 for rate in rates.values())


def test_language_detection_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import language_detection

    results = language_detection.run()
    assert "Language detection" in capsys.readouterr().out
    assert all(0 < count <= 84 for name, count in results.items() if name != "switches")


@pytest.mark.timeout(300)
def test_redis_roundtrips_benchmark_counts_answered_messages(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import redis_roundtrips

    results = redis_roundtrips.run(2)
    assert "Redis round trips" in capsys.readouterr().out
    for kind, figures in results["this tree"].items():
        assert figures["replied"] >= 3, kind  # the warm-up and both measured messages were answered
        assert figures["round_trips"] > 0 and figures["keys_per_message"] > 0, kind


def test_slow_clients_benchmark_runs_and_closes_every_dripping_connection(capsys: pytest.CaptureFixture[str]) -> None:
    result = slow_clients.run(20, quick=True)
    assert "Slow clients" in capsys.readouterr().out
    assert result["still_open"] == 0 and result["answered_408"] == 20
