"""Fetch one Piper voice at image build time, pinned by revision and checked by SHA-256 (stdlib only).

    python deploy/piper_voice.py --voice es_MX-ald-medium --path es/es_MX/ald/medium --revision v1.0.0 \
        --sha256 <hex of the .onnx> --dest /opt/piper-voices

Downloads `<voice>.onnx`, `<voice>.onnx.json` and the voice's `MODEL_CARD` (its licence, kept beside it as
`<voice>.MODEL_CARD`) from `<base-url>/<revision>/<path>/` (Hugging Face's "resolve" URLs of rhasspy/piper-voices,
https://huggingface.co/rhasspy/piper-voices), refuses a model whose digest differs and a config without a sample
rate, and only then moves the files into place: a failed build leaves no half-downloaded voice behind.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

BASE_URL = "https://huggingface.co/rhasspy/piper-voices/resolve"
CHUNK = 1 << 20


class FetchError(RuntimeError):
    pass


def download(url: str, target: Path, timeout: float) -> str:
    """Stream `url` to `target`; returns the SHA-256 hex digest of what was written."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response, target.open("wb") as out:  # noqa: S310
        while block := response.read(CHUNK):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def fetch(voice: str, path: str, revision: str, sha256: str, dest: Path, base_url: str, timeout: float) -> None:
    source = f"{base_url.rstrip('/')}/{revision}/{path.strip('/')}"
    files = {f"{voice}.onnx": f"{voice}.onnx", f"{voice}.onnx.json": f"{voice}.onnx.json"}
    files["MODEL_CARD"] = f"{voice}.MODEL_CARD"
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        staged = Path(tmp)
        digests = {name: download(f"{source}/{name}", staged / local, timeout) for name, local in files.items()}
        if digests[f"{voice}.onnx"] != sha256.lower():
            raise FetchError(f"{voice}.onnx at {revision}: SHA-256 {digests[f'{voice}.onnx']}, expected {sha256}")
        config = json.loads((staged / f"{voice}.onnx.json").read_text(encoding="utf-8"))
        if not int(config.get("audio", {}).get("sample_rate", 0)):
            raise FetchError(f"{voice}.onnx.json has no audio.sample_rate")
        for local in files.values():
            shutil.move(staged / local, dest / local)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", required=True, help="e.g. es_MX-ald-medium")
    parser.add_argument("--path", required=True, help="folder in the repository, e.g. es/es_MX/ald/medium")
    parser.add_argument("--revision", required=True, help="a commit or tag of rhasspy/piper-voices")
    parser.add_argument("--sha256", required=True, help="SHA-256 of the .onnx model")
    parser.add_argument("--dest", required=True, type=Path)
    parser.add_argument("--base-url", default=BASE_URL)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    try:
        fetch(args.voice, args.path, args.revision, args.sha256, args.dest, args.base_url, args.timeout)
    except (OSError, ValueError, FetchError) as exc:
        print(f"piper_voice: {exc}", file=sys.stderr)
        return 1
    print(f"piper_voice: {args.voice} at {args.revision} -> {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
