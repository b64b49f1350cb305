"""Piper voices run locally, as their own program (https://github.com/OHF-Voice/piper1-gpl).

`piper-tts` is GPL-3.0 and this project is MIT, so Piper is never imported: it runs as a subprocess, exactly like
ffmpeg, and talks to us through pipes only (text in on stdin, raw audio out on stdout, no temporary files). The
import contract in `pyproject.toml` forbids importing `piper` anywhere in our code.

A voice is a pair of files, `<name>.onnx` (the model) and `<name>.onnx.json` (its config, which names the sample
rate), in PIPER_VOICES_DIR. `--output-raw` makes Piper write 16-bit little-endian mono samples as it synthesises.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from workers.errors import PermanentError

# Seconds of silence Piper puts between the sentences of one request; joins between requests use the same pause.
SENTENCE_PAUSE_SECONDS = 0.12


class PiperSetupError(RuntimeError):
    """Piper or one of its voices is missing; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class PiperVoice:
    name: str
    model: Path
    config: Path
    sample_rate: int


class PiperEngine:
    """Runs `piper` once per request. Loading the engine and a voice takes about 2-3 s of CPU (measured on the
    2-core CI machine), synthesis about a third of real time, so callers send whole replies, not sentences."""

    def __init__(self, binary: str, voices_dir: Path, timeout: float = 60.0) -> None:
        self.binary = binary
        self.voices_dir = voices_dir
        self.timeout = timeout
        self._voices: dict[str, PiperVoice] = {}

    def executable(self) -> str:
        path = shutil.which(self.binary)
        if path is None:
            raise PiperSetupError(
                f"Piper not found ({self.binary!r} is not on PATH). The worker image installs it; elsewhere run "
                "`uv sync --extra piper` or point PIPER_BINARY at it."
            )
        return path

    def voice(self, name: str) -> PiperVoice:
        """The voice's files and sample rate, read once. Raises PiperSetupError when they are missing or broken."""
        cached = self._voices.get(name)
        if cached is not None:
            return cached
        model = self.voices_dir / f"{name}.onnx"
        config = self.voices_dir / f"{name}.onnx.json"
        if not model.is_file() or not config.is_file():
            raise PiperSetupError(
                f"Piper voice {name!r} not found: expected {model} and {config} (PIPER_VOICES_DIR). "
                "docs/voice.md says how to add a voice."
            )
        try:
            rate = int(json.loads(config.read_text(encoding="utf-8"))["audio"]["sample_rate"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PiperSetupError(f"Piper voice config {config} has no audio.sample_rate: {exc}") from exc
        voice = PiperVoice(name, model, config, rate)
        self._voices[name] = voice
        return voice

    def speak(self, voice_name: str, text: str) -> tuple[bytes, int]:
        """(raw s16le mono samples, sample rate in Hz) of `text`. Raises PermanentError when Piper fails, times out
        or its voice is missing (the reply then goes out as text; `ops_alert` when the setup is broken)."""
        try:
            voice = self.voice(voice_name)
            binary = self.executable()
        except PiperSetupError as exc:
            raise PermanentError("piper_missing", str(exc), ops_alert=True) from exc
        args = [binary, "--model", str(voice.model), "--config", str(voice.config), "--output-raw"]
        args += ["--sentence-silence", str(SENTENCE_PAUSE_SECONDS)]
        # One line: Piper treats every input line as a separate utterance.
        line = " ".join(text.split()) + "\n"
        try:
            process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise PermanentError("piper_missing", str(exc), ops_alert=True) from exc
        try:
            out, err = process.communicate(line.encode(), timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.communicate()
            # A busy CPU would be as busy on a second try: the reply goes out as text now.
            raise PermanentError("piper_timeout", f"no audio after {self.timeout:.0f}s") from exc
        if process.returncode != 0 or not out:
            # The last line of a traceback names the error; never the text (it is not in Piper's messages).
            last = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
            raise PermanentError("piper_failed", last[0][:200])
        return out[: len(out) - len(out) % 2], voice.sample_rate
