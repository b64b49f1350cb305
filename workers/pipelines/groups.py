"""WhatsApp groups (https://developers.facebook.com/docs/whatsapp/cloud-api/groups): a group is its own
conversation (its own memory, mailbox and order, keyed by the group id's digest: shared/identity.py), answered in
the group by the GROUP_REPLIES policy, with no read receipt or typing indicator (Meta supports neither in groups).

Meta marks no mentions in webhooks, so "addressed to the bot" is defined here: the message replies (`context.id`)
to one of the bot's own messages in that group, or its text or caption contains BUSINESS_DISPLAY_NAME or
`@`+BUSINESS_DISPLAY_PHONE_NUMBER (case-insensitive).
"""

from __future__ import annotations

from shared.config import Settings
from shared.jobs import InboundJob
from shared.logging import conversation_ref, correlation_id, get_logger
from workers.context import WorkerContext
from workers.delivery.memory import entry
from workers.pipelines.payloads import as_dict, media_caption, user_text

log = get_logger("workers.pipelines.groups")

BOT_MESSAGES_PREFIX = "lp:group-bot:"
# Enough of the bot's latest messages per group to recognise a reply to any of them for a week.
BOT_MESSAGES_KEPT = 200
BOT_MESSAGES_TTL_SECONDS = 7 * 24 * 3600


def remember_bot_message(ctx: WorkerContext, job: InboundJob, wamid: str) -> None:
    """Record a message the bot sent to a group, so a member's reply to it counts as addressing the bot."""
    if not job.group_id or not wamid:
        return
    key = BOT_MESSAGES_PREFIX + job.conversation
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.lpush(key, wamid)
    pipe.ltrim(key, 0, BOT_MESSAGES_KEPT - 1)
    pipe.expire(key, BOT_MESSAGES_TTL_SECONDS)
    pipe.execute()


def mentions_bot(settings: Settings, words: str) -> bool:
    lowered = words.casefold()
    name = settings.business_display_name.strip().casefold()
    number = settings.business_display_phone_number.strip().lstrip("+")
    return bool(name and name in lowered) or bool(number and (f"@{number}" in lowered or f"@+{number}" in lowered))


def addressed_to_bot(ctx: WorkerContext, job: InboundJob) -> bool:
    quoted = as_dict(job.message.get("context")).get("id")
    bot_messages = BOT_MESSAGES_PREFIX + job.conversation
    if isinstance(quoted, str) and quoted and ctx.redis.lpos(bot_messages, quoted) is not None:
        return True
    words = user_text(job.message) or media_caption(job.message)
    return mentions_bot(ctx.settings, words)


def handled_by_group_policy(ctx: WorkerContext, job: InboundJob) -> bool:
    """True when the group message is dealt with here (not answered); False when the pipeline should answer it.
    A message not answered still enters the group's memory (text only, with the member's name), so the bot has
    the thread when it is addressed later."""
    if not job.group_id:
        return False
    policy = ctx.settings.group_replies
    if policy == "all" or (policy == "mention" and addressed_to_bot(ctx, job)):
        return False
    words = user_text(job.message) or media_caption(job.message)
    if words:
        ctx.ledgers.of(job).remember(ctx.memory, entry("user", member_says(job, words)))
    log.info(
        "group.not_addressed",
        correlation_id=correlation_id(job.message_id),
        conversation=conversation_ref(job.conversation),
        policy=policy,
    )
    return True


def member_says(job: InboundJob, words: str) -> str:
    """A group turn as the model sees it: who said it, then the words."""
    return f"({job.contact_name or 'a member'}) {words}" if job.group_id else words
