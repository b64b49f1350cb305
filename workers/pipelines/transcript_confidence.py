"""What Whisper heard, once the segments it was not confident about are left out.

Whisper's `verbose_json` gives every segment a `no_speech_prob` (how likely the audio holds no speech) and an
`avg_logprob` (the mean log probability of its tokens). Three rules, thresholds in settings (docs/voice.md):

1. Whisper's own rule: `no_speech_prob > STT_NO_SPEECH_PROB` and `avg_logprob <= STT_LOGPROB_THRESHOLD` -> silence
   (openai/whisper `transcribe.py`, `no_speech_threshold=0.6`, `logprob_threshold=-1.0`:
   https://github.com/openai/whisper/blob/main/whisper/transcribe.py).
2. A segment with `no_speech_prob > STT_HALLUCINATION_NO_SPEECH_PROB` whose whole text is a phrase Whisper is known
   to invent on silence ("Thank you.", subtitle credits; workers/text/whisper_hallucinations.json).
3. Very short audio (at most STT_SHORT_AUDIO_SECONDS): a segment must pass both thresholds, not just one.

The silent note of issue 17 (2 s, " Thank you.", no_speech_prob 0.91, avg_logprob -0.94) passes rule 1 and is caught
by rules 2 and 3. A transcript without segments (another response format) is taken as it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from shared.config import Settings
from workers.clients.groq import Segment
from workers.text.hallucinations import is_known_hallucination


@dataclass(frozen=True, slots=True)
class ConfidenceRules:
    no_speech_prob: float = 0.6
    logprob_threshold: float = -1.0
    hallucination_no_speech_prob: float = 0.6
    short_audio_seconds: float = 2.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ConfidenceRules:
        return cls(
            settings.stt_no_speech_prob,
            settings.stt_logprob_threshold,
            settings.stt_hallucination_no_speech_prob,
            settings.stt_short_audio_seconds,
        )


@dataclass(frozen=True, slots=True)
class Heard:
    """The confident text, and how many segments each rule left out (for logs; no text)."""

    text: str
    dropped: Counter[str]


def why_dropped(segment: Segment, rules: ConfidenceRules, seconds: float | None) -> str:
    """The rule that leaves `segment` out, "" when it stays. Missing figures never drop a segment."""
    no_speech = segment.no_speech_prob
    logprob = segment.avg_logprob
    silent = no_speech is not None and no_speech > rules.no_speech_prob
    # Whisper skips unless avg_logprob > logprob_threshold, so the threshold itself counts as unsure.
    unsure = logprob is not None and logprob <= rules.logprob_threshold
    if silent and unsure:
        return "whisper_rule"
    if (
        no_speech is not None
        and no_speech > rules.hallucination_no_speech_prob
        and is_known_hallucination(segment.text)
    ):
        return "known_hallucination"
    if seconds is not None and seconds <= rules.short_audio_seconds and (silent or unsure):
        return "short_and_unsure"
    return ""


def confident_text(text: str, segments: Sequence[Segment], rules: ConfidenceRules, seconds: float | None) -> Heard:
    """The transcript's text without the segments the rules leave out ("" when none is left). `seconds` is the
    audio's duration (None when unknown: rule 3 does not apply)."""
    if not segments:
        return Heard(text.strip(), Counter())
    dropped: Counter[str] = Counter()
    kept: list[str] = []
    for segment in segments:
        if reason := why_dropped(segment, rules, seconds):
            dropped[reason] += 1
        else:
            kept.append(segment.text.strip())
    if not dropped:
        return Heard(text.strip(), dropped)  # Whisper's own joining of the segments, untouched
    return Heard(" ".join(part for part in kept if part), dropped)
