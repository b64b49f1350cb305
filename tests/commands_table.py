"""The tables of docs/commands.md, parsed: the docs are checked against the data file and the behaviour."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

COMMANDS_DOC = Path(__file__).resolve().parents[1] / "docs" / "commands.md"

_QUOTED = re.compile(r'"([^"]+)"')
_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Row:
    command: str
    first_word: str
    user_sees: str

    @property
    def quoted(self) -> list[str]:
        """The sentences the user sees, as quoted in the row."""
        return _QUOTED.findall(self.user_sees)


def _table(heading: str) -> list[list[str]]:
    text = COMMANDS_DOC.read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


def what_the_user_sees() -> list[Row]:
    return [Row(cells[0], _CODE.findall(cells[1])[0], cells[3]) for cells in _table("What the user sees")]


def words_per_language() -> dict[str, dict[str, list[str]]]:
    """command -> language -> words, from the "The words, per language" table."""
    text = COMMANDS_DOC.read_text()
    header = next(line for line in text.splitlines() if line.startswith("| Language |"))
    commands = [cell.strip() for cell in header.strip("|").split("|")][1:]
    words: dict[str, dict[str, list[str]]] = {command: {} for command in commands}
    for cells in _table("The words, per language"):
        language = _CODE.findall(cells[0])[0]
        for command, cell in zip(commands, cells[1:], strict=True):
            words[command][language] = _CODE.findall(cell)
    return words
