"""Every step that touches user media is bounded in CPU time, memory and output, whatever the bytes.

The budgets are asserted on resource numbers (CPU seconds from the kernel's accounting, peak resident memory),
never on wall-clock time.
"""

from __future__ import annotations

import ast
import resource
import sys
import time

import pytest

from tests import media_attacks
from tests.webhooks import MEDIA_FIXTURES
from workers.errors import UserInputError
from workers.media.bounded import BudgetError, WorkBudget, run_bounded
from workers.media.images import prepare_for_vision
from workers.media.ogg import ImplausibleOggError, ogg_duration
from workers.media.transcode import audio_duration

MB = 1024 * 1024
BUDGET = WorkBudget(cpu_seconds=2, memory_bytes=256 * MB, max_output_bytes=1 * MB, timeout_seconds=30)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


# --- the bounded child process -----------------------------------------------------------------------------------


def test_a_child_that_computes_forever_is_stopped_by_its_cpu_limit() -> None:
    with pytest.raises(BudgetError) as caught:
        run_bounded(python("while True: pass"), b"", BUDGET)
    assert caught.value.reason == "cpu_limit"
    assert 1.5 <= caught.value.cpu_seconds < 4.0  # the soft limit at 2 s, SIGKILL at the hard limit (3 s)


def test_a_child_that_allocates_without_end_is_stopped_by_its_memory_limit() -> None:
    with pytest.raises(BudgetError) as caught:
        run_bounded(python("blocks = []\nwhile True: blocks.append(bytearray(16 * 1024 * 1024))"), b"", BUDGET)
    assert caught.value.reason == "memory_limit"
    assert 0 < caught.value.peak_memory_bytes <= 256 * MB


def test_a_child_that_floods_its_output_is_stopped_past_the_cap() -> None:
    flood = "import sys\nwhile True: sys.stdout.buffer.write(bytes(65536))"
    with pytest.raises(BudgetError) as caught:
        run_bounded(python(flood), b"", BUDGET)
    assert caught.value.reason == "output_limit"


def test_a_child_that_blocks_is_stopped_at_the_timeout() -> None:
    budget = WorkBudget(cpu_seconds=2, memory_bytes=256 * MB, max_output_bytes=MB, timeout_seconds=0.5)
    with pytest.raises(BudgetError) as caught:
        run_bounded(python("import time; time.sleep(60)"), b"", budget)
    assert caught.value.reason == "timeout"
    assert caught.value.cpu_seconds < 1.0


def test_a_child_gets_its_input_and_reports_what_it_cost() -> None:
    data = bytes(range(256)) * 4096  # 1 MB: more than a pipe buffer, so writing and reading interleave
    echo = "import sys\nsys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])"
    finished = run_bounded(python(echo), data, WorkBudget(5, 256 * MB, 2 * MB, 30), env={})
    assert finished.output == data[::-1]
    assert 0 < finished.cpu_seconds < 5
    assert 0 < finished.peak_memory_bytes < 256 * MB


def test_a_child_sees_only_the_environment_it_is_given() -> None:
    finished = run_bounded(python("import os; print(sorted(os.environ))"), b"", BUDGET, env={"ONLY": "this"})
    assert set(ast.literal_eval(finished.output.decode())) <= {"ONLY", "LC_CTYPE"}  # Python may add LC_CTYPE


def test_a_child_cannot_write_files(tmp_path) -> None:
    code = "import sys\nwith open(sys.argv[1], 'w') as f:\n    f.write('x' * 10)\n    f.flush()"
    with pytest.raises(BudgetError) as caught:
        run_bounded([*python(code), str(tmp_path / "out")], b"", BUDGET)
    assert caught.value.reason == "failed"
    assert "File too large" in caught.value.detail  # RLIMIT_FSIZE 0: EFBIG (Python ignores SIGXFSZ)
    assert (tmp_path / "out").read_text() == ""


# --- Ogg: a linear page walk; lying pages are refused ------------------------------------------------------------


def cpu_seconds_of(call) -> tuple[object, float]:
    before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        result: object = call()
    except Exception as exc:
        result = exc
    after = resource.getrusage(resource.RUSAGE_SELF)
    return result, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        # A backwards search that CRC-checks every candidate takes ~30 CPU-seconds on 128 KB of this layout.
        ("overlapping pages, 16 MB", media_attacks.overlapping_pages_ogg(16 * MB)),
        # The most pages 16 MB can hold: the worst case for a walk, about 1 CPU-second.
        ("empty pages, 16 MB", media_attacks.empty_pages_ogg(16 * MB)),
        ("real note padded to 1 MB", media_attacks.lying_granule_ogg(0.5) + bytes(MB)),
    ],
)
def test_crafted_ogg_is_refused_in_bounded_cpu(name: str, data: bytes) -> None:
    result, cpu = cpu_seconds_of(lambda: ogg_duration(data))
    assert isinstance(result, ImplausibleOggError), name
    assert cpu < 5.0, f"{name}: {cpu:.2f} CPU-seconds"
    # ... and audio_duration does not hand it to ffmpeg (whose own Ogg demuxer is quadratic on the first layout).
    result, cpu = cpu_seconds_of(lambda: audio_duration(data, limit_seconds=300))
    assert result is None
    assert cpu < 5.0


def test_a_page_claiming_hours_is_believed_and_then_too_long() -> None:
    assert ogg_duration(media_attacks.lying_granule_ogg(10 * 3600)) == pytest.approx(36000, abs=1)


def test_a_real_minute_long_note_is_read_without_a_process() -> None:
    from tests.fakes.groq_fake import tone_wav
    from workers.media.transcode import transcode_to_voice_note

    note = transcode_to_voice_note(tone_wav(60, rate=8000), bitrate="8k")
    seconds, cpu = cpu_seconds_of(lambda: ogg_duration(note))
    assert seconds == pytest.approx(60, abs=0.1)
    assert cpu < 0.5


def test_undecodable_audio_costs_ffmpeg_at_most_its_budget() -> None:
    started = time.process_time()
    assert audio_duration(b"\xff\xfb" + bytes(2 * MB), limit_seconds=300, timeout=30, cpu_seconds=2) is None
    assert time.process_time() - started < 2.0  # the worker's own CPU: ffmpeg's is its child's, under its limit


# --- images: the pixel cap from the header, decoding in a bounded child ------------------------------------------

PHOTO = (MEDIA_FIXTURES / "photo.jpg").read_bytes()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("59 MP PNG of 190 KB", media_attacks.pixel_bomb_png(), "image_too_large"),
        ("PNG header claiming 20000x20000, 4 rows", media_attacks.lying_header_png(20000, 20000), "image_too_large"),
        ("JPEG header claiming 60000x60000", media_attacks.jpeg_header_claiming(60000, 60000), "image_too_large"),
        ("JPEG header claiming 6000x5000", media_attacks.jpeg_header_claiming(6000, 5000), "image_too_large"),
        ("truncated JPEG", media_attacks.truncated(PHOTO), "image_unreadable"),
        ("truncated PNG", media_attacks.truncated(media_attacks.pixel_bomb_png(800, 600)), "image_unreadable"),
        ("EPS (Ghostscript is never run)", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "image_unreadable"),
    ],
)
def test_crafted_images_are_refused_politely_at_small_cost(name: str, data: bytes, reason: str) -> None:
    worker_cpu = time.process_time()
    with pytest.raises(UserInputError) as caught:
        prepare_for_vision(data, 4_000_000, 2048, max_pixels=25_000_000)
    assert caught.value.reason == reason, name
    assert time.process_time() - worker_cpu < 0.5  # the decoding happened in the child


def test_a_decoder_over_its_memory_budget_means_too_large() -> None:
    big = media_attacks.pixel_bomb_png(5000, 5000, mode="RGBA")  # 25 MP: allowed by the pixel cap
    with pytest.raises(UserInputError) as caught:
        prepare_for_vision(big, 4_000_000, 2048, max_pixels=25_000_000, memory_bytes=96 * MB)
    assert caught.value.reason == "image_too_large"
    image = prepare_for_vision(big, 4_000_000, 2048, max_pixels=25_000_000)  # within the default 512 MB
    assert (image.width, image.height) == (2048, 2048)
