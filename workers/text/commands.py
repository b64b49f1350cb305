"""The user's exact commands (reset, stop, start, export, delete), read from `commands.toml`, never from a model.

A text message is a command when its whole text, trimmed, case-folded and without one leading `/` and trailing
`.`/`!`, is one of the listed words; the language it is listed under is the language of the answer. Anything else,
including a command word inside a longer sentence, is an ordinary message. What each command does and what the user
sees: docs/commands.md.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

COMMANDS_FILE = Path(__file__).with_name("commands.toml")


class Command(StrEnum):
    RESET = "reset"
    STOP = "stop"
    START = "start"
    EXPORT = "export"
    DELETE = "delete"
    HANDOFF = "handoff"  # asking for a person (docs/handoff.md)


@dataclass(frozen=True, slots=True)
class CommandRequest:
    command: Command
    language: str  # ISO 639-1: the language the word is listed under


def normalise(text: str) -> str:
    """The form a message is compared in: trimmed, case-folded, single spaces, one leading "/" and trailing
    sentence punctuation removed ("/Stop!" -> "stop")."""
    words = " ".join(text.split()).casefold()
    words = words.removeprefix("/").strip().rstrip(".!¡。").strip()
    return words


@cache
def command_words() -> dict[str, CommandRequest]:
    """Every listed word (normalised) -> its command and language. Raises ValueError for an unknown command or a
    word listed twice (an ambiguous word would make the answer depend on the file's order)."""
    table = tomllib.loads(COMMANDS_FILE.read_text(encoding="utf-8"))
    words: dict[str, CommandRequest] = {}
    for name, languages in table.items():
        command = Command(name)
        for language, listed in languages.items():
            for word in listed:
                key = normalise(word)
                if key in words:
                    raise ValueError(f"{COMMANDS_FILE.name}: {word!r} is listed twice")
                words[key] = CommandRequest(command, language)
    return words


def parse_command(text: str | None) -> CommandRequest | None:
    """The command `text` is, or None. Long texts are never commands (no normalising a 4,096-character message)."""
    if not text or len(text) > 64:
        return None
    return command_words().get(normalise(text))
