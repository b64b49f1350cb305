"""Which voice speaks which language: the `TTS_VOICES` routing table, merged with the older settings.

Syntax (whitespace ignored, entries separated by commas):

    LANG=BACKEND:VOICE[@MODEL]     e.g. en=groq:autumn, ar=groq:noura@canopylabs/orpheus-arabic-saudi,
                                        es=piper:es_MX-ald-medium, fr=openai:alloy@tts-1
    LANG=text                      answer LANG with text even where an older setting would speak it

LANG is an ISO 639-1 code (what Whisper's language becomes, `workers.text.languages`). BACKEND is `groq` (Orpheus),
`openai` (any OpenAI-compatible `/audio/speech` endpoint) or `piper` (a local Piper voice, by file name). Without
`@MODEL`, Groq uses TTS_MODEL (TTS_ARABIC_MODEL for `ar` when set) and OpenAI uses OPENAI_TTS_MODEL; Piper voices
are their own model, so `@` is refused there.

The older settings are aliases: every language in VOICE_REPLY_LANGUAGES is spoken by Groq with TTS_MODEL/TTS_VOICE,
and `ar` with TTS_ARABIC_MODEL/TTS_ARABIC_VOICE only when TTS_ARABIC_MODEL is set. TTS_VOICES entries are applied
on top, per language. A language without a route is answered with text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from shared.config import Settings


class Backend(StrEnum):
    GROQ = "groq"
    OPENAI = "openai"
    PIPER = "piper"


@dataclass(frozen=True, slots=True)
class TTSRoute:
    """One language's voice: `model` is "" for Piper (the voice file is the model)."""

    language: str
    backend: Backend
    voice: str
    model: str = ""


class RoutingError(ValueError):
    """TTS_VOICES cannot be understood; the message names the entry and the fix."""


_LANGUAGE = re.compile(r"[a-z]{2}")
# Piper voice names become file names: no path separators, no leading dot.
_PIPER_VOICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_TEXT = "text"
_SYNTAX = "write LANG=BACKEND:VOICE[@MODEL] (BACKEND: groq, openai or piper) or LANG=text"


def parse_tts_voices(value: str) -> dict[str, TTSRoute | None]:
    """TTS_VOICES as {language: route}, None meaning "answer with text". Raises RoutingError on any bad entry."""
    table: dict[str, TTSRoute | None] = {}
    for number, raw in enumerate(value.split(","), start=1):
        entry = raw.strip()
        if not entry:
            continue
        where = f"TTS_VOICES entry {number} ({entry!r})"
        language, equals, target = (part.strip() for part in entry.partition("="))
        language = language.lower()
        if not equals or not target:
            raise RoutingError(f"{where}: {_SYNTAX}")
        if not _LANGUAGE.fullmatch(language):
            raise RoutingError(f"{where}: the language must be a two-letter ISO 639-1 code such as en or es")
        if language in table:
            raise RoutingError(f"{where}: {language} is routed twice")
        table[language] = None if target.lower() == _TEXT else _route(language, target, where)
    return table


def _route(language: str, target: str, where: str) -> TTSRoute:
    name, colon, rest = (part.strip() for part in target.partition(":"))
    try:
        backend = Backend(name.lower())
    except ValueError:
        raise RoutingError(f"{where}: unknown backend {name!r}; {_SYNTAX}") from None
    voice, at, model = (part.strip() for part in rest.partition("@"))
    if not colon or not voice:
        raise RoutingError(f"{where}: no voice after {name}:; {_SYNTAX}")
    if at and not model:
        raise RoutingError(f"{where}: nothing after @; write @MODEL or leave it out")
    if backend is Backend.PIPER:
        if at:
            raise RoutingError(f"{where}: a Piper voice is its own model; drop @{model}")
        if not _PIPER_VOICE.fullmatch(voice):
            raise RoutingError(f"{where}: a Piper voice is a file name in PIPER_VOICES_DIR such as es_MX-ald-medium")
    return TTSRoute(language, backend, voice, model)


def _with_default_model(route: TTSRoute, settings: Settings) -> TTSRoute:
    if route.model or route.backend is Backend.PIPER:
        return route
    if route.backend is Backend.OPENAI:
        model = settings.openai_tts_model
    else:
        model = (
            settings.tts_arabic_model if route.language == "ar" and settings.tts_arabic_model else settings.tts_model
        )
    return TTSRoute(route.language, route.backend, route.voice, model)


def alias_routes(settings: Settings) -> dict[str, TTSRoute]:
    """What VOICE_REPLY_LANGUAGES + TTS_MODEL/TTS_VOICE/TTS_ARABIC_* say on their own (today's behaviour)."""
    routes: dict[str, TTSRoute] = {}
    for language in sorted(settings.voice_reply_language_set):
        if language == "ar":
            # Orpheus English cannot speak Arabic: without the Arabic model, Arabic gets text.
            if settings.tts_arabic_model:
                routes[language] = TTSRoute(
                    language, Backend.GROQ, settings.tts_arabic_voice, settings.tts_arabic_model
                )
        else:
            routes[language] = TTSRoute(language, Backend.GROQ, settings.tts_voice, settings.tts_model)
    return routes


def voice_routes(settings: Settings) -> dict[str, TTSRoute]:
    """The whole routing table: the aliases, then TTS_VOICES per language. Raises RoutingError."""
    routes = alias_routes(settings)
    for language, route in parse_tts_voices(settings.tts_voices).items():
        if route is None:
            routes.pop(language, None)
        else:
            routes[language] = _with_default_model(route, settings)
    return routes


def route_for(settings: Settings, language: str) -> TTSRoute | None:
    """The voice for replies in `language`, or None (answer with text)."""
    return voice_routes(settings).get(language) if language else None


def describe(routes: dict[str, TTSRoute]) -> str:
    """ "en=groq:autumn@canopylabs/orpheus-v1-english, es=piper:es_MX-ald-medium" for the start-up log."""
    parts = []
    for language, route in sorted(routes.items()):
        model = f"@{route.model}" if route.model else ""
        parts.append(f"{language}={route.backend.value}:{route.voice}{model}")
    return ", ".join(parts) or "none (every reply is text)"
