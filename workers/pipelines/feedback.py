"""A user's reaction to one of the bot's messages: feedback on that answer, never answered.

The reaction names the message it reacts to by Meta's id; the bot's sent messages are recorded by that id at send
time (workers/delivery/outgoing.py), so the reaction lands in the ledger of the message the answer was for
(`feedback:<part>`, shown by `loopera trace`) and is counted (`loopera_feedback_reactions_total`). An empty or
missing emoji is the reaction taken back: the feedback is removed. A reaction to anything else (the user's own
message, a message older than the ledgers) is only logged. Shape:
`{"type": "reaction", "reaction": {"message_id": "<wamid>", "emoji": "👍"}}`
(https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/reference/messages).
"""

from __future__ import annotations

import time

from shared.jobs import InboundJob
from shared.ledger import ledger_key
from shared.logging import correlation_id, get_logger
from shared.redis_scripts import ScriptName, ScriptResult, lua_source
from workers import metrics
from workers.context import WorkerContext
from workers.pipelines.payloads import as_dict

log = get_logger("workers.pipelines.feedback")

# WhatsApp's quick reactions and a thumbs down: a metric label each; any other emoji counts as `other`, so a label
# never carries an unbounded set of values.
COMMON_REACTIONS = frozenset({"👍", "👎", "❤", "😂", "😮", "😢", "🙏", "🔥", "👏", "😡"})
# Variation selector and skin tones: "❤️" and "❤", "👍🏽" and "👍" are one reaction.
_MODIFIERS = {0xFE0F, 0xFE0E, *range(0x1F3FB, 0x1F400)}


def reaction_label(emoji: str) -> str:
    """The metric label of a reaction: a common emoji (without variation selector or skin tone), `other`, or
    `removed` for an empty one."""
    if not emoji:
        return "removed"
    base = "".join(ch for ch in emoji if ord(ch) not in _MODIFIERS)
    return base if base in COMMON_REACTIONS else "other"


def record_feedback(ctx: WorkerContext, job: InboundJob) -> None:
    reaction = as_dict(job.message.get("reaction"))
    target, emoji = reaction.get("message_id"), reaction.get("emoji") or ""
    cid = correlation_id(job.message_id)
    if not isinstance(target, str) or not target or not isinstance(emoji, str) or ctx.ledgers.outgoing is None:
        log.info("feedback.ignored", correlation_id=cid, reason="malformed")
        return
    found = ctx.ledgers.outgoing.find(target)
    if found is None:
        log.info("feedback.ignored", correlation_id=cid, reason="not_a_bot_message")
        return
    ref, part = found
    script = ctx.redis.register_script(lua_source(ScriptName.FEEDBACK))
    result = ScriptResult(int(script(keys=[ledger_key(ref)], args=[part, emoji, int(time.time() * 1000)])))
    label = reaction_label(emoji)
    if result is ScriptResult.WRITTEN:
        metrics.FEEDBACK.labels(label).inc()
    log.info("feedback.recorded", correlation_id=cid, answer=ref[:12], part=part, reaction=label, kept=result.name)
