"""The audio worker's start-up check of its voices: a broken TTS_VOICES, an OpenAI route without an endpoint or a
missing Piper voice stops the worker with one clear message, instead of failing every voice reply over to text."""

from __future__ import annotations

from shared.config import Settings
from workers.clients.piper import PiperEngine, PiperSetupError
from workers.media.transcode import VoiceSetupError
from workers.voice.routing import Backend, RoutingError, describe, voice_routes


def check_voice_routes(settings: Settings) -> str:
    """Returns the routing table as one line for the log. Raises VoiceSetupError saying what to fix."""
    try:
        routes = voice_routes(settings)
    except RoutingError as exc:
        raise VoiceSetupError(str(exc)) from exc
    backends = {route.backend for route in routes.values()}
    if Backend.OPENAI in backends and not settings.openai_tts_base_url:
        languages = ", ".join(sorted(lang for lang, r in routes.items() if r.backend is Backend.OPENAI))
        raise VoiceSetupError(
            f"TTS_VOICES routes {languages} to an OpenAI-compatible endpoint, but OPENAI_TTS_BASE_URL is not set "
            "(e.g. https://api.openai.com/v1 or your TTS server's /v1 URL)."
        )
    if Backend.PIPER in backends:
        engine = PiperEngine(settings.piper_binary, settings.piper_voices_dir)
        try:
            engine.executable()
            for route in routes.values():
                if route.backend is Backend.PIPER:
                    engine.voice(route.voice)
        except PiperSetupError as exc:
            raise VoiceSetupError(str(exc)) from exc
    return describe(routes)
