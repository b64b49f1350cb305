"""Who a message is from and which conversation it belongs to: phone number, business-scoped user id, group.

Meta identifies a user by phone number (`from`, `contacts[].wa_id`) and, since 2026, by a business-scoped user id
(BSUID: `from_user_id`, `contacts[].user_id`). A user who adopts a username may arrive with only the BSUID, and
the same person may switch between the two shapes in either direction
(https://developers.facebook.com/docs/whatsapp/cloud-api/business-scoped-user-ids). A message from a WhatsApp group
carries `group_id` (https://developers.facebook.com/docs/whatsapp/cloud-api/groups).

A conversation id is never a raw identifier: it is a kind letter plus a BLAKE2b digest keyed with the message
hashing key (`Settings.message_hashing_key()`, shared/ledger.py) (`u:`, `p:`, `g:`),
so Redis keys (`lp:inbox:<conv>`, `lp:mem:<conv>`) and logs carry no phone number. Phone and BSUID are linked in
Redis (`lp:who:<digest>` -> conversation id, written by shared/scripts/resolve_identity.lua where the webhook
enqueues): whichever the conversation started with, later messages with either identity, or both, continue it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

WHO_PREFIX = "lp:who:"
# A person's marketing preferences (`user_preferences` webhooks): a hash `<category>` -> value, `<category>:at` ->
# Meta's timestamp, so an older update delivered late never overrides a newer one.
PREFERENCES_PREFIX = "lp:prefs:"
# A link lives this long after the person's last message: far longer than memory (24 h) or a message's ledger, so
# a user who comes back after months is still one conversation; the link holds two digests, nothing readable.
LINK_TTL_SECONDS = 400 * 24 * 3600

USER, PHONE, GROUP = "u", "p", "g"


def identity_digest(kind: str, value: str, key: bytes) -> str:
    """`<kind>:<24 hex>`: a keyed BLAKE2b-96 of one identifier (`key`: up to 64 bytes, the deployment's secret)."""
    digest = hashlib.blake2b(value.encode(), digest_size=12, key=key[:64], person=b"loopera-who").hexdigest()
    return f"{kind}:{digest}"


def link_key(digest: str) -> str:
    return WHO_PREFIX + digest


@dataclass(frozen=True, slots=True)
class Sender:
    """The identities of one inbound message. `candidate` is the conversation id a first message starts: the
    group's, else the BSUID's (Meta's stable key), else the phone's. `links` are the identities to resolve and link
    (a group needs none: its id is its conversation)."""

    candidate: str
    links: tuple[str, ...]  # BSUID digest first: its link is never re-pointed

    @staticmethod
    def of(phone: str | None, user_id: str | None, group_id: str | None, key: bytes) -> Sender:
        if group_id:
            return Sender(identity_digest(GROUP, group_id, key), ())
        links = tuple(identity_digest(kind, value, key) for kind, value in ((USER, user_id), (PHONE, phone)) if value)
        if not links:
            raise ValueError("a message needs a phone number, a user id or a group id")
        return Sender(links[0], links)

    def joined_by(self, phone: str | None, user_id: str | None, key: bytes) -> Sender:
        """The same person, also known from now on by these identities (a `user_changed_number` notice): they are
        linked to the conversation the current ones resolve to (read after them, so they never decide it)."""
        extra = tuple(
            digest
            for kind, value in ((USER, user_id), (PHONE, phone))
            if value and (digest := identity_digest(kind, value, key)) not in self.links
        )
        return Sender(self.candidate, self.links + extra) if self.links else self


_CONVERSATION_ID = re.compile(r"^[upg]:[0-9a-f]{24}$")


def named_identity(identifier: str, key: bytes) -> tuple[str, bool]:
    """What an operator's identifier names: (a conversation id as `loopera handoff list` prints it, True), or (the
    digest of a business-scoped user id, which contains a dot such as `US.7310000000000000013`, or of a phone
    number, digits with an optional `+`; False): that digest's link (`link_key`) then names the conversation."""
    identifier = identifier.strip()
    if _CONVERSATION_ID.match(identifier):
        return identifier, True
    if "." in identifier:
        return identity_digest(USER, identifier, key), False
    return identity_digest(PHONE, identifier.lstrip("+"), key), False


def linked_conversation(digest: str, linked: bytes | str | None) -> str:
    """The conversation a link (`GET link_key(digest)`) names; an unknown person gets the id their first message
    would start."""
    if linked is None:
        return digest
    return linked.decode() if isinstance(linked, bytes) else linked


class _Reads(Protocol):
    def get(self, name: str) -> bytes | str | None: ...


def conversation_for(client: _Reads, identifier: str, key: bytes) -> str:
    """The conversation of a person an operator names (see `named_identity`). Raises redis errors."""
    named, is_conversation = named_identity(identifier, key)
    return named if is_conversation else linked_conversation(named, client.get(link_key(named)))
