"""WhatsApp Cloud API (Graph) client: one per worker process, reused for every job.

The bearer token is attached per request, only over https, and only for Meta's hosts (on the default port) or
exactly the configured Graph URL's origin (scheme, host and port): media URLs come from payloads, and a token sent
to any other host, port or scheme (or in clear text) would be leaked. A media URL that fails this rule is the
input's fault, not the channel's: it is refused as a UserInputError, which the pipelines answer politely and the
job runner never retries. In the
sandbox (SANDBOX=true, docs/sandbox.md) plain http is allowed to exactly the configured Graph URL's origin, and only
when that is a loopback address.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from shared.config import LOOPBACK_HOSTS
from workers.clients.graph_errors import GraphError, classify_graph_response, classify_transport_error
from workers.errors import UserInputError

META_HOST_SUFFIXES = (".facebook.com", ".fbsbx.com", ".fbcdn.net", ".whatsapp.net", ".whatsapp.com")
HTTPS_PORT = 443

# The `biz_opaque_callback_data` of the message being sent (shared/callback_data.py), set around a reply part's send
# by the ledger (workers/delivery/ledger.py), so every part carries it without each pipeline passing it on.
_callback_data: ContextVar[str | None] = ContextVar("graph_callback_data", default=None)


@contextmanager
def tagged(data: str) -> Iterator[None]:
    """Messages sent inside this block carry `data` as `biz_opaque_callback_data`: Meta echoes it in their status
    webhooks (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages). Read receipts and the
    typing indicator are not messages and carry nothing."""
    token = _callback_data.set(data)
    try:
        yield
    finally:
        _callback_data.reset(token)


def _port_of(scheme: str, port: int | None) -> int | None:
    """The port a URL really uses: its default when none is written."""
    if port is not None:
        return port
    return {"https": HTTPS_PORT, "http": 80}.get(scheme)


@dataclass(frozen=True, slots=True)
class MediaInfo:
    url: str
    mime_type: str
    file_size: int | None


class GraphClient:
    def __init__(
        self,
        base_url: str,
        version: str,
        token: str,
        phone_number_id: str,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
        sandbox: bool = False,
    ) -> None:
        self._api = f"{base_url.rstrip('/')}/{version}"
        graph = urlsplit(base_url)
        self._graph_host = (graph.hostname or "").lower()
        self._graph_origin = (graph.scheme, self._graph_host, _port_of(graph.scheme, graph.port))
        # The only plain-http origin the token may go to: the sandbox's loopback Graph stand-in.
        self._plain_http_origin = (
            (self._graph_host, graph.port) if sandbox and self._graph_host in LOOPBACK_HOSTS else None
        )
        self._auth = {"Authorization": f"Bearer {token}"}
        self._phone_number_id = phone_number_id
        # follow_redirects stays off: a redirect must never carry the token to another host.
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0), transport=transport)

    def close(self) -> None:
        self._http.close()

    def may_receive_token(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:  # a port that is not a number, or out of range
            return False
        host = (parts.hostname or "").lower()
        if parts.scheme == "http":
            return self._plain_http_origin is not None and (host, port) == self._plain_http_origin
        if parts.scheme != "https":
            return False
        if (parts.scheme, host, _port_of(parts.scheme, port)) == self._graph_origin:
            return True
        meta_host = any(host.endswith(s) or host == s[1:] for s in META_HOST_SUFFIXES)
        return meta_host and _port_of(parts.scheme, port) == HTTPS_PORT

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if not self.may_receive_token(url):
            raise GraphError("untrusted_host", f"refusing to send the token to {urlsplit(url).hostname}")
        try:
            response = self._http.request(method, url, headers=self._auth, **kwargs)
        except httpx.HTTPError as exc:
            raise classify_transport_error(exc) from exc
        if response.status_code >= 400:
            raise classify_graph_response(response)
        return response

    def _post_message(self, body: dict[str, Any]) -> dict[str, Any]:
        data = _callback_data.get()
        if data is not None and "type" in body:
            body["biz_opaque_callback_data"] = data
        response = self._request("POST", f"{self._api}/{self._phone_number_id}/messages", json=body)
        result: dict[str, Any] = response.json()
        return result

    @staticmethod
    def _addressed(to: str | None, recipient: str | None, group: bool = False) -> dict[str, Any]:
        # Users with a username may have no phone number: Meta then addresses them by business-scoped user id
        # (https://developers.facebook.com/docs/whatsapp/cloud-api/business-scoped-user-ids). A group is addressed
        # by its id in `to` with recipient_type "group" (https://developers.facebook.com/docs/whatsapp/cloud-api/groups).
        kind = "group" if group else "individual"
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": kind}
        if to:
            body["to"] = to
        elif recipient:
            body["recipient"] = recipient
        else:
            raise GraphError("no_recipient", "message has neither `from` nor a user id")
        return body

    def mark_read(self, message_id: str) -> None:
        """Blue ticks only: for a message that will get no answer (Meta: show typing only if you will reply)."""
        self._post_message({"messaging_product": "whatsapp", "status": "read", "message_id": message_id})

    def mark_read_and_typing(self, message_id: str) -> None:
        self._post_message(
            {
                "messaging_product": "whatsapp",
                "status": "read",
                "message_id": message_id,
                "typing_indicator": {"type": "text"},
            }
        )

    def send_text(
        self, to: str | None, recipient: str | None, text: str, reply_to: str | None = None, group: bool = False
    ) -> str:
        body = self._addressed(to, recipient, group)
        body |= {"type": "text", "text": {"body": text, "preview_url": False}}
        if reply_to:
            body["context"] = {"message_id": reply_to}
        return self._sent_id(self._post_message(body))

    def send_reaction(
        self, to: str | None, recipient: str | None, message_id: str, emoji: str, group: bool = False
    ) -> str:
        """React to message `message_id` with `emoji`; "" takes our reaction back
        (https://developers.facebook.com/docs/whatsapp/cloud-api/messages/reaction-messages). Returns Meta's id of
        the reaction message. Raises GraphError."""
        body = self._addressed(to, recipient, group)
        body |= {"type": "reaction", "reaction": {"message_id": message_id, "emoji": emoji}}
        return self._sent_id(self._post_message(body))

    def send_template(self, to: str | None, recipient: str | None, name: str, language: str) -> str:
        """An approved message template without parameters: the one kind of message Meta accepts outside the
        customer service window (https://developers.facebook.com/docs/whatsapp/cloud-api/guides/send-message-templates)."""
        body = self._addressed(to, recipient)
        body |= {"type": "template", "template": {"name": name, "language": {"code": language}}}
        return self._sent_id(self._post_message(body))

    def send_voice(
        self, to: str | None, recipient: str | None, media_id: str, reply_to: str | None = None, group: bool = False
    ) -> str:
        body = self._addressed(to, recipient, group)
        body |= {"type": "audio", "audio": {"id": media_id, "voice": True}}
        if reply_to:
            body["context"] = {"message_id": reply_to}
        return self._sent_id(self._post_message(body))

    def send_document(
        self, to: str | None, recipient: str | None, media_id: str, filename: str, caption: str = ""
    ) -> str:
        """Send an uploaded file as a `document` message (https://developers.facebook.com/docs/whatsapp/cloud-api/
        messages/document-messages); returns Meta's message id. Raises GraphError."""
        body = self._addressed(to, recipient)
        document: dict[str, Any] = {"id": media_id, "filename": filename}
        if caption:
            document["caption"] = caption
        body |= {"type": "document", "document": document}
        return self._sent_id(self._post_message(body))

    @staticmethod
    def _sent_id(result: dict[str, Any]) -> str:
        messages = result.get("messages") or [{}]
        return str(messages[0].get("id", ""))

    def upload_media(self, data: bytes, mime_type: str, filename: str) -> str:
        response = self._request(
            "POST",
            f"{self._api}/{self._phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, data, mime_type)},
        )
        return str(response.json()["id"])

    def media_info(self, media_id: str) -> MediaInfo:
        info = self._request("GET", f"{self._api}/{media_id}").json()
        size = info.get("file_size")
        return MediaInfo(str(info["url"]), str(info.get("mime_type", "")), int(size) if size is not None else None)

    def download_media(self, media_id: str, max_bytes: int) -> tuple[bytes, str]:
        """Fetch a fresh URL (they expire after 5 minutes) and download it; on 404 fetch a new URL once."""
        for attempt in (1, 2):
            info = self.media_info(media_id)
            if info.file_size is not None and info.file_size > max_bytes:
                raise UserInputError("media_too_large", f"{info.file_size} bytes")
            try:
                return self._download(info.url, max_bytes), info.mime_type
            except GraphError as exc:
                if attempt == 1 and exc.reason == "graph_404":
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _download(self, url: str, max_bytes: int) -> bytes:
        if not self.may_receive_token(url):
            # The URL came with the media's metadata: refuse it politely, never retry it, never send the token.
            raise UserInputError("untrusted_media_url", "the media URL is not on Meta's hosts over https")
        try:
            with self._http.stream("GET", url, headers=self._auth) as response:
                if response.status_code >= 400:
                    response.read()
                    raise classify_graph_response(response)
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise UserInputError("media_too_large", f"more than {max_bytes} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            raise classify_transport_error(exc) from exc
