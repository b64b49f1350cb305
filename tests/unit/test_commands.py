"""The user's commands: exact words from a data file, and the docs' tables that describe them."""

from __future__ import annotations

import tomllib

import pytest

from tests.commands_table import what_the_user_sees, words_per_language
from workers.pipelines.controls import COMMANDS, EXPORT_FILENAME
from workers.text.commands import COMMANDS_FILE, Command, CommandRequest, command_words, normalise, parse_command
from workers.text.phrases import PHRASES, phrase

LANGUAGES = ["en", "es", "pt", "fr", "de", "it", "ar"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stop", CommandRequest(Command.STOP, "en")),
        ("/STOP", CommandRequest(Command.STOP, "en")),
        ("  Stop! ", CommandRequest(Command.STOP, "en")),
        ("/delete   my  data.", CommandRequest(Command.DELETE, "en")),
        ("Borrar mis datos", CommandRequest(Command.DELETE, "es")),
        ("LÖSCHEN", CommandRequest(Command.DELETE, "de")),
        ("إيقاف", CommandRequest(Command.STOP, "ar")),
        ("please stop", None),
        ("stop it", None),
        ("//stop", None),
        ("", None),
        (None, None),
        ("stop " * 30, None),
    ],
)
def test_only_a_whole_message_is_a_command(text: str | None, expected: CommandRequest | None) -> None:
    assert parse_command(text) == expected


def test_every_command_has_words_in_every_supported_language_and_a_handler() -> None:
    table = tomllib.loads(COMMANDS_FILE.read_text())
    assert set(table) == {command.value for command in Command} == {command.value for command in COMMANDS}
    for command, languages in table.items():
        assert sorted(languages) == sorted(LANGUAGES), command
        assert all(words for words in languages.values()), command


def test_no_word_is_listed_twice() -> None:
    table = tomllib.loads(COMMANDS_FILE.read_text())
    listed = [normalise(word) for languages in table.values() for words in languages.values() for word in words]
    assert len(listed) == len(set(listed)) == len(command_words())


def test_every_answer_exists_in_every_supported_language() -> None:
    for command in Command:
        assert sorted(PHRASES[f"command_{command.value}"]) == sorted(LANGUAGES), command


def test_the_docs_list_exactly_the_data_files_words() -> None:
    assert words_per_language() == tomllib.loads(COMMANDS_FILE.read_text())


def test_the_docs_what_the_user_sees_table_names_each_command_and_its_words() -> None:
    rows = what_the_user_sees()
    assert [row.command for row in rows] == [command.value for command in Command]
    for row in rows:
        assert parse_command(row.first_word) == CommandRequest(Command(row.command), "en")
        assert row.quoted[-1] == phrase(f"command_{row.command}", "en")
    assert f"`{EXPORT_FILENAME}`" in rows[3].user_sees
