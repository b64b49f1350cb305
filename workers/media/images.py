"""Images for the vision model: keep small ones as they are, shrink the rest until their base64 fits Groq's limit.

The decoding runs in a child process under a work budget (`workers.media.image_decoder` under
`workers.media.bounded`): a pixel bomb, a decoder stuck on crafted data or a lying header costs that child its
CPU or memory limit, never the worker. Python's start-up and Pillow's import cost the child about 0.1 CPU-second
and 17 MB before it decodes anything, small next to a vision model call; a 59 MP pixel bomb decoded in-process
took 466 MB (`python -m bench.media_budget`, docs/performance.md#media-parsers).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from workers.errors import UserInputError
from workers.media.bounded import BudgetError, WorkBudget, run_bounded
from workers.media.image_decoder import base64_size

__all__ = ["VisionImage", "base64_size", "prepare_for_vision"]

# The child needs our package and nothing of the worker's environment (no tokens, no keys).
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])
_HEADER_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class VisionImage:
    data: bytes
    mime_type: str
    width: int
    height: int
    reencoded: bool

    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode('ascii')}"


def decoder_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": _SOURCE_ROOT,
        "PYTHONDONTWRITEBYTECODE": "1",
        "MALLOC_ARENA_MAX": "2",  # one thread: no need for glibc's per-thread arenas of reserved address space
    }


def prepare_for_vision(
    data: bytes,
    max_base64_bytes: int,
    max_side: int,
    max_pixels: int = 25_000_000,
    cpu_seconds: int = 10,
    memory_bytes: int = 512 * 1024 * 1024,
) -> VisionImage:
    """Return the image unchanged when Groq can take it, else a JPEG that fits `max_base64_bytes` once base64
    encoded and whose longer side is at most `max_side`.

    Raises UserInputError: `image_too_large` (over `max_pixels` by its header, or the decoder ran out of its
    `cpu_seconds` / `memory_bytes` budget), `image_unreadable` (not an image we read, truncated, corrupt)."""
    args = [sys.executable, "-m", "workers.media.image_decoder", str(max_base64_bytes), str(max_side), str(max_pixels)]
    budget = WorkBudget(cpu_seconds, memory_bytes, max_base64_bytes + _HEADER_LIMIT, timeout_seconds=cpu_seconds * 2)
    try:
        output = run_bounded(args, data, budget, env=decoder_env()).output
    except BudgetError as exc:
        if exc.reason == "failed":
            raise UserInputError("image_unreadable", f"decoder failed: {exc.detail[-120:]}") from exc
        raise UserInputError("image_too_large", f"decoder stopped: {exc.reason}") from exc
    header_line, _, encoded = output.partition(b"\n")
    header = json.loads(header_line)
    if "error" in header:
        raise UserInputError(str(header["error"]), str(header["detail"]))
    reencoded = bool(header["reencoded"])
    return VisionImage(
        encoded if reencoded else data, str(header["mime_type"]), int(header["width"]), int(header["height"]), reencoded
    )
