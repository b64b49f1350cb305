"""The contract between the API and the workers: queue names, task names and the job payload.

The API enqueues by task *name*; it never imports the worker code (see the import contract in pyproject.toml).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.amendments import edited_message


class Queue(StrEnum):
    TEXT = "text"
    AUDIO = "audio"
    VISION = "vision"


class TaskName(StrEnum):
    TEXT = "loopera.text.handle_message"
    AUDIO = "loopera.audio.handle_message"
    VISION = "loopera.vision.handle_message"


TASK_FOR_QUEUE: dict[Queue, TaskName] = {
    Queue.TEXT: TaskName.TEXT,
    Queue.AUDIO: TaskName.AUDIO,
    Queue.VISION: TaskName.VISION,
}

# Celery resolves routes on the producer: the workers load this same table so no task ever lands in the default
# `celery` queue that nobody consumes.
TASK_ROUTES: dict[str, dict[str, str]] = {task.value: {"queue": queue.value} for queue, task in TASK_FOR_QUEUE.items()}

# Message types whose work needs a different pool. Everything else (text, interactive, button, location, contacts,
# sticker, video, document, reaction, ...) is cheap and goes to `text`, which decides how to answer it.
_QUEUE_FOR_TYPE: dict[str, Queue] = {"audio": Queue.AUDIO, "image": Queue.VISION}


def queue_for_message_type(message_type: str) -> Queue:
    return _QUEUE_FOR_TYPE.get(message_type, Queue.TEXT)


def queue_for_message(message: dict[str, Any]) -> Queue:
    """The queue of Meta's message object: by its type, and for an `edit` of a photo's caption, `vision` (the photo
    is looked at again with the new caption; a text edit stays on `text`). Voice notes cannot be edited."""
    message_type = str(message.get("type") or "")
    if message_type == "edit":
        edited = edited_message(message)
        return Queue.VISION if edited is not None and edited.get("type") == "image" else Queue.TEXT
    return queue_for_message_type(message_type)


# Ids become Redis keys and Graph API path or body fields. Meta's are short (a wamid ~60 characters, a wa_id at most
# 15 digits, a business-scoped user id ~30, a phone number id ~16); far longer ones are not Meta's and would only
# bloat keys, so the schema (the API's and the worker's) refuses them.
MAX_ID_CHARS = 256
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
MessageType = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class InboundJob(BaseModel):
    """One inbound WhatsApp message, as the workers receive it.

    `message` is Meta's message object exactly as delivered (types evolve; the worker decides what it understands).
    `conversation` is who we talk to: an opaque id (shared/identity.py) shared by every message of one person,
    whether it came with the phone number, the business-scoped user id or both, or of one group.
    The API validates every job with this model before queueing it (api/webhook_payload.py), so the worker never
    receives a job it would reject; ids are 1..MAX_ID_CHARS characters.
    """

    model_config = ConfigDict(frozen=True)

    job_id: Id
    message_id: Id
    message_type: MessageType
    conversation: Id
    phone_number_id: Id
    received_at: float
    message: dict[str, Any]
    contact_name: str | None = None
    # Where replies go: a wa_id for `to`, or a business-scoped user id for `recipient`; for a group message `to` is
    # the group id (sent with `recipient_type: group`).
    to: Id | None = None
    recipient: Id | None = None
    # Set for a message written in a WhatsApp group: the group is the conversation, the sender one of its members.
    group_id: Id | None = None
    # In a group: the member who wrote, as an identity digest (shared/identity.py), for per-user settings (rate
    # limits, opt-out) that apply to the member, not to the whole group.
    member: Id | None = None
