"""Media parsers against the libraries that could replace them, and crafted media against their work budget.

Same run, same machine, one table each:

1. Ogg duration: `workers/media/ogg.py`'s page walk vs ffprobe (bounded, the note in a memory file so that it can
   seek to the last page: piped input has no duration), on real voice notes.
2. Crafted Ogg: the page walk vs a backwards search that CRC-checks every "OggS" candidate (the obvious design,
   kept here as the baseline) vs ffprobe, on crafted page layouts.
3. WAV: `workers/media/wav.py` vs the stdlib `wave` module: the cost of parsing a TTS answer, and which of the WAV
   shapes TTS services send each one reads.
4. Images: the bounded decoder child (`workers/media/images.py`) on real photos and on crafted images, vs
   decoding in the worker process itself with Pillow's default cap (its memory is the worker's).

CPU seconds come from the kernel's accounting (getrusage, wait4); peak memory is VmHWM, sampled.

    python -m bench.media_budget [--quick]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import struct
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from typing import Any

from bench import common
from tests import media_attacks
from tests.fakes.groq_fake import tone_wav
from tests.webhooks import MEDIA_FIXTURES
from workers.media.bounded import BudgetError, WorkBudget, run_bounded
from workers.media.images import decoder_env
from workers.media.ogg import ogg_duration
from workers.media.transcode import transcode_to_voice_note
from workers.media.wav import WavError, parse_wav

MB = 1024 * 1024
FFPROBE_BUDGET = WorkBudget(cpu_seconds=30, memory_bytes=512 * MB, max_output_bytes=MB, timeout_seconds=60)


def cpu_per_call(call: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Mean CPU seconds of one call (this process), and the last result or exception."""
    result: object = None
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(repeat):
        try:
            result = call()
        except Exception as exc:
            result = exc
    after = resource.getrusage(resource.RUSAGE_SELF)
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) / repeat, result


def ffprobe_duration(data: bytes) -> tuple[float, int, str]:
    """(CPU seconds, peak bytes, duration or the reason it stopped) of ffprobe reading `data` from a memory file."""
    fd = os.memfd_create("voice-note")
    try:
        os.write(fd, data)
        args = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", f"/proc/self/fd/{fd}"]
        try:
            finished = run_bounded(args, b"", FFPROBE_BUDGET, pass_fds=[fd])
        except BudgetError as exc:
            return exc.cpu_seconds, exc.peak_memory_bytes, exc.reason
        return finished.cpu_seconds, finished.peak_memory_bytes, finished.output.decode().strip()
    finally:
        os.close(fd)


# --- a backwards reader (baseline only) -----------------------------------------------------------------------------

_HEADER = struct.Struct("<4sBBqIIIB")


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_TABLE = _crc_table()


def _crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _TABLE[((crc >> 24) ^ byte) & 0xFF]
    return crc


def _checked_page(data: bytes, pos: int) -> tuple[int, int] | None:
    if pos + _HEADER.size > len(data):
        return None
    capture, version, _, granule, serial, _, crc, count = _HEADER.unpack_from(data, pos)
    table_end = pos + _HEADER.size + count
    if capture != b"OggS" or version != 0 or table_end > len(data):
        return None
    end = table_end + sum(data[pos + _HEADER.size : table_end])
    if end > len(data):
        return None
    page = bytearray(data[pos:end])
    page[22:26] = b"\x00\x00\x00\x00"
    return (granule, serial) if _crc(bytes(page)) == crc else None


def backwards_reader(data: bytes) -> float | None:
    """Search backwards for the last "OggS" and CRC-check each candidate: quadratic on overlapping candidates."""
    first = _checked_page(data, 0)
    if first is None:
        return None
    pos = data.rfind(b"OggS")
    while pos > 0:
        page = _checked_page(data, pos)
        if page is not None and page[1] == first[1] and page[0] >= 0:
            return page[0] / 48000
        pos = data.rfind(b"OggS", 0, pos)
    return 0.0


# --- tables -------------------------------------------------------------------------------------------------------


def show(result: object) -> str:
    if isinstance(result, BaseException):
        return type(result).__name__
    return f"{result:.2f} s" if isinstance(result, float) else str(result)


def ogg_table(quick: bool) -> list[list[str]]:
    notes = {"4 s voice note (fixture)": (MEDIA_FIXTURES / "voice-en.ogg").read_bytes()}
    for seconds in () if quick else (60, 300):
        notes[f"{seconds} s voice note, 16 kbit/s"] = transcode_to_voice_note(
            tone_wav(seconds, rate=16000), bitrate="16k", timeout=120
        )
    rows = []
    for name, data in notes.items():
        ours, seconds = cpu_per_call(lambda data=data: ogg_duration(data), 20 if quick else 200)
        probe_runs = [ffprobe_duration(data) for _ in range(3 if quick else 10)]
        probe_cpu = sum(run[0] for run in probe_runs) / len(probe_runs)
        rows.append(
            [
                name,
                f"{len(data):,}",
                f"{ours * 1000:.3f} ms",
                show(seconds),
                f"{probe_cpu * 1000:.1f} ms",
                f"{max(run[1] for run in probe_runs) / MB:.0f} MB",
                probe_runs[-1][2],
                f"{probe_cpu / ours:,.0f}x" if ours else "",
            ]
        )
    common.print_header("Ogg duration: page walk vs ffprobe (memory file, bounded)", common.machine())
    common.print_table(
        ["note", "bytes", "walk CPU/call", "walk says", "ffprobe CPU/call", "ffprobe peak", "ffprobe says", "ratio"],
        rows,
    )
    return rows


def crafted_ogg_table(quick: bool) -> list[list[str]]:
    cases = [
        ("overlapping pages, 96 KB", media_attacks.overlapping_pages_ogg(96 * 1024), True),
        ("overlapping pages, 128 KB", media_attacks.overlapping_pages_ogg(128 * 1024), True),
        ("overlapping pages, 1 MB", media_attacks.overlapping_pages_ogg(MB), False),
        ("overlapping pages, 16 MB", media_attacks.overlapping_pages_ogg(16 * MB), False),
        ("empty pages, 1 MB", media_attacks.empty_pages_ogg(MB), True),
        ("empty pages, 16 MB", media_attacks.empty_pages_ogg(16 * MB), True),
    ]
    if quick:
        cases = [case for case in cases if case[0] in ("overlapping pages, 1 MB", "empty pages, 1 MB")]
    rows = []
    for name, data, with_baseline in cases:
        walk, result = cpu_per_call(lambda data=data: ogg_duration(data), 1)
        old = f"{cpu_per_call(lambda data=data: backwards_reader(data), 1)[0]:.2f}" if with_baseline else "-"
        probe_cpu, probe_peak, probe_says = ffprobe_duration(data)
        rows.append(
            [name, f"{walk:.3f}", show(result), old, f"{probe_cpu:.2f}", f"{probe_peak / MB:.0f} MB", probe_says]
        )
    common.print_header("Crafted Ogg: CPU seconds of the page walk, a backwards CRC search, and ffprobe", {})
    common.print_table(
        ["input", "walk CPU s", "walk says", "backwards search CPU s", "ffprobe CPU s", "ffprobe peak", "ffprobe says"],
        rows,
    )
    return rows


def _chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def wav_shapes() -> dict[str, bytes]:
    fmt = struct.pack("<HHIIHH", 1, 1, 24000, 48000, 2, 16)
    extensible = struct.pack("<HHIIHH", 0xFFFE, 1, 24000, 48000, 2, 16) + struct.pack("<HHI", 22, 16, 4)
    extensible += b"\x01\x00\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    frames = b"\x01\x00" * 2400

    def riff(*chunks: bytes, size: int | None = None) -> bytes:
        body = b"WAVE" + b"".join(chunks)
        return b"RIFF" + struct.pack("<I", len(body) if size is None else size) + body

    streamed = b"data" + b"%s" + frames  # a stream written before its length was known
    return {
        "plain 44-byte header": riff(_chunk(b"fmt ", fmt), _chunk(b"data", frames)),
        "LIST chunk before fmt": riff(
            _chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00Lavf\x00"), _chunk(b"fmt ", fmt), _chunk(b"data", frames)
        ),
        "WAVE_FORMAT_EXTENSIBLE": riff(_chunk(b"fmt ", extensible), _chunk(b"data", frames)),
        "streamed, sizes 0xFFFFFFFF": riff(_chunk(b"fmt ", fmt), streamed % b"\xff\xff\xff\xff", size=0xFFFFFFFF),
        "streamed, sizes 0": riff(_chunk(b"fmt ", fmt), streamed % b"\x00\x00\x00\x00", size=0),
    }


def _wave_frames(data: bytes) -> int:
    with wave.open(io.BytesIO(data)) as reader:
        return len(reader.readframes(reader.getnframes())) // reader.getsampwidth()


def _ours_frames(data: bytes) -> int:
    return len(parse_wav(data).frames) // 2


def wav_table(quick: bool) -> list[list[str]]:
    answer = tone_wav(60.0)
    repeat = 20 if quick else 200
    ours, _ = cpu_per_call(lambda: parse_wav(answer), repeat)
    stdlib, _ = cpu_per_call(lambda: _wave_frames(answer), repeat)
    rows = [["60 s TTS answer, 24 kHz 16-bit", f"{ours * 1000:.3f} ms", f"{stdlib * 1000:.3f} ms", "", ""]]
    for name, data in wav_shapes().items():
        expected = 2400
        results = []
        for read in (_ours_frames, _wave_frames):
            try:
                frames = read(data)
                results.append("reads it" if frames == expected else f"{frames} of {expected} frames")
            except (WavError, wave.Error, EOFError, struct.error) as exc:
                results.append(f"refuses it ({type(exc).__name__})")
        rows.append([name, "", "", *results])
    common.print_header("WAV: workers/media/wav.py vs the stdlib wave module", {"python": sys.version.split()[0]})
    common.print_table(["input", "ours CPU/parse", "wave CPU/parse", "ours", "wave"], rows)
    return rows


_IN_PROCESS = """
import io, sys, time, warnings
from PIL import Image
data = sys.stdin.buffer.read()
started = time.process_time()
warnings.simplefilter("ignore")
try:
    image = Image.open(io.BytesIO(data)); image.load()
    image = image.convert("RGB"); image.thumbnail((2048, 2048))
    image.save(io.BytesIO(), format="JPEG", quality=85)
    result = f"{image.width}x{image.height}"
except Exception as exc:
    result = type(exc).__name__
hwm = [l for l in open("/proc/self/status").read().splitlines() if l.startswith("VmHWM")][0].split()[1]
print(result, time.process_time() - started, int(hwm) * 1024)
"""


def decoder_child(data: bytes) -> tuple[float, int, str]:
    args = [sys.executable, "-m", "workers.media.image_decoder", "4000000", "2048", "25000000"]
    budget = WorkBudget(10, 512 * MB, 5 * MB, 20)
    try:
        finished = run_bounded(args, data, budget, env=decoder_env())
    except BudgetError as exc:
        return exc.cpu_seconds, exc.peak_memory_bytes, exc.reason
    header = finished.output.partition(b"\n")[0].decode()
    said = header.split('"error": "')[1].split('"')[0] if '"error"' in header else "decoded"
    return finished.cpu_seconds, finished.peak_memory_bytes, said


def in_process(data: bytes) -> tuple[float, int, str]:
    """Pillow in a fresh Python process, as a worker would decode in its own memory (Pillow's default cap)."""
    out = subprocess.run(
        [sys.executable, "-c", _IN_PROCESS], input=data, capture_output=True, check=False, env=decoder_env()
    ).stdout.split()
    return float(out[1]), int(out[2]), out[0].decode()


def images(quick: bool) -> dict[str, bytes]:
    from PIL import Image

    def encoded(image: Any, **options: Any) -> bytes:
        out = io.BytesIO()
        image.save(out, **options)
        return out.getvalue()

    noise = Image.frombytes("RGB", (4000, 3000), os.urandom(4000 * 3000 * 3))
    cases = {
        "photo 640x480 JPEG (passes through)": (MEDIA_FIXTURES / "photo.jpg").read_bytes(),
        "12 MP JPEG photo (noise, 10 MB)": encoded(noise, format="JPEG", quality=90),
        "25 MP RGBA PNG (at the pixel cap)": media_attacks.pixel_bomb_png(5000, 5000, mode="RGBA"),
        "59 MP PNG of 190 KB (pixel bomb)": media_attacks.pixel_bomb_png(),
        "PNG header claiming 20000x20000": media_attacks.lying_header_png(20000, 20000),
        "truncated JPEG": media_attacks.truncated((MEDIA_FIXTURES / "photo.jpg").read_bytes()),
    }
    if quick:
        for name in ("12 MP JPEG photo (noise, 10 MB)", "25 MP RGBA PNG (at the pixel cap)"):
            cases.pop(name)
    return cases


def images_table(quick: bool) -> list[list[str]]:
    rows = []
    for name, data in images(quick).items():
        child_cpu, child_peak, child_says = decoder_child(data)
        own_cpu, own_peak, own_says = in_process(data)
        rows.append(
            [
                name,
                f"{len(data):,}",
                f"{child_cpu:.2f}",
                f"{child_peak / MB:.0f} MB",
                child_says,
                f"{own_cpu:.2f}",
                f"{own_peak / MB:.0f} MB",
                own_says,
            ]
        )
    common.print_header("Images: the bounded decoder child vs Pillow in the worker's own process", {})
    common.print_table(
        ["image", "bytes", "child CPU s", "child peak", "child says", "in-process CPU s", "in-process peak", "says"],
        rows,
    )
    return rows


def run(quick: bool = False) -> dict[str, list[list[str]]]:
    started = time.monotonic()
    tables = {
        "ogg": ogg_table(quick),
        "crafted_ogg": crafted_ogg_table(quick),
        "wav": wav_table(quick),
        "images": images_table(quick),
    }
    print(f"(media_budget took {time.monotonic() - started:.0f} s)")
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs only: proves the benchmark runs")
    run(parser.parse_args().quick)


if __name__ == "__main__":
    main()
