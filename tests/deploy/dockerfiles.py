"""Read what a Dockerfile says (instructions, ENV, the exec-form CMD/HEALTHCHECK) so tests can run it locally."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGES = {"api": "Dockerfile.api", "worker": "Dockerfile.worker", "flower": "Dockerfile.flower"}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions(path: Path) -> list[Instruction]:
    text = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, args = stripped.partition(" ")
        result.append(Instruction(keyword.upper(), args.strip()))
    return result


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form CMD; raises if it is shell form (signals would go to /bin/sh)."""
    value = json.loads(args)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"not exec form: {args}")
    return value


def cmd(path: Path) -> list[str]:
    return exec_form([i for i in instructions(path) if i.keyword == "CMD"][-1].args)


def healthcheck(path: Path) -> list[str]:
    args = [i for i in instructions(path) if i.keyword == "HEALTHCHECK"][-1].args
    return exec_form(args[args.index("CMD ") + 4 :])


def env(path: Path) -> dict[str, str]:
    """The image's ENV, with `${NAME}` expanded from the ARG defaults declared before it (as docker build does)."""
    values: dict[str, str] = {}
    args: dict[str, str] = {}
    for instruction in instructions(path):
        if instruction.keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            args[name.strip()] = default.strip()
        elif instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                key, _, value = pair.partition("=")
                values[key] = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), value)
    return values


def sync_extras(path: Path) -> list[list[str]]:
    """The `--extra` names of each `uv sync` in the file, in order."""
    found = []
    for instruction in instructions(path):
        if instruction.keyword == "RUN" and "uv sync" in instruction.args:
            found.append(re.findall(r"--extra[ =](\S+)", instruction.args))
    return found
