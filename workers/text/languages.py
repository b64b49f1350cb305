"""Language names and codes: Whisper's verbose_json says "English"; we keep ISO 639-1 codes."""

from __future__ import annotations

_CODES = {
    "english": "en", "spanish": "es", "portuguese": "pt", "french": "fr", "german": "de", "italian": "it",
    "dutch": "nl", "arabic": "ar", "hebrew": "he", "russian": "ru", "ukrainian": "uk", "turkish": "tr",
    "hindi": "hi", "urdu": "ur", "bengali": "bn", "indonesian": "id", "malay": "ms", "japanese": "ja",
    "korean": "ko", "chinese": "zh", "mandarin": "zh", "polish": "pl", "swedish": "sv", "persian": "fa",
    "vietnamese": "vi", "thai": "th", "greek": "el", "czech": "cs", "romanian": "ro", "hungarian": "hu",
    "catalan": "ca", "swahili": "sw", "tagalog": "tl", "filipino": "tl", "danish": "da", "norwegian": "no",
    "finnish": "fi", "tamil": "ta", "telugu": "te", "marathi": "mr", "punjabi": "pa", "gujarati": "gu",
}  # fmt: skip


def language_code(name_or_code: str) -> str:
    """Normalise "English", "english", "en" or "en-US" to "en"; "" when unknown."""
    value = name_or_code.strip().lower()
    if not value:
        return ""
    if value in _CODES:
        return _CODES[value]
    base = value.replace("_", "-").split("-")[0]
    return base if len(base) == 2 and base.isalpha() else ""
