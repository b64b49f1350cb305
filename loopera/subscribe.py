"""`loopera subscribe`: subscribe the Meta app to the WABA's webhooks (the fix for shadow delivery), then read
the subscription back so the operator sees what Meta actually stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from shared.config import ConfigError, Settings, is_placeholder

MAX_CALLBACK_URI = 200  # Graph rejects longer override_callback_uri values (Graph API reference: subscribed_apps)


@dataclass(frozen=True)
class Subscription:
    apps: list[dict[str, Any]]

    def includes(self, app_id: str) -> bool:
        if not app_id:
            return bool(self.apps)
        return any(str(a.get("whatsapp_business_api_data", {}).get("id")) == app_id for a in self.apps)


class GraphRequestError(RuntimeError):
    pass


def subscribe(settings: Settings, callback_uri: str | None = None, http: httpx.Client | None = None) -> Subscription:
    if is_placeholder(settings.waba_id) or is_placeholder(settings.whatsapp_token):
        raise ConfigError("subscribe needs WABA_ID and WHATSAPP_TOKEN")
    body: dict[str, str] = {}
    if callback_uri:
        if len(callback_uri) > MAX_CALLBACK_URI:
            raise ConfigError(f"override_callback_uri must be at most {MAX_CALLBACK_URI} characters")
        if is_placeholder(settings.verify_token):
            raise ConfigError("overriding the callback URI needs VERIFY_TOKEN (Meta verifies the new URL with it)")
        body = {"override_callback_uri": callback_uri, "verify_token": settings.verify_token.get_secret_value()}
    client = http or httpx.Client(timeout=settings.graph_timeout_seconds)
    try:
        return _post_and_read(client, settings, body)
    finally:
        if http is None:
            client.close()


def _post_and_read(client: httpx.Client, settings: Settings, body: dict[str, str]) -> Subscription:
    url = f"{settings.graph_base}/{settings.waba_id}/subscribed_apps"
    headers = {"Authorization": f"Bearer {settings.whatsapp_token.get_secret_value()}"}
    posted = client.post(url, headers=headers, json=body or None)
    if posted.status_code != 200:
        raise GraphRequestError(f"POST subscribed_apps failed: {posted.status_code} {_error_message(posted)}")
    read = client.get(url, headers=headers)
    if read.status_code != 200:
        raise GraphRequestError(f"GET subscribed_apps failed: {read.status_code} {_error_message(read)}")
    return Subscription(list(read.json().get("data", [])))


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", {}).get("message", ""))
    except ValueError:
        return response.text[:200]


# The app's webhook fields for WhatsApp (App Dashboard > WhatsApp > Configuration, or Graph's
# /{app-id}/subscriptions: https://developers.facebook.com/docs/graph-api/reference/application/subscriptions/).
# `smb_message_echoes` carries a person's replies from the WhatsApp Business app (docs/handoff.md).
WEBHOOK_OBJECT = "whatsapp_business_account"
WANTED_FIELDS = ("messages", "smb_message_echoes")


def app_webhook_fields(settings: Settings, client: httpx.Client) -> tuple[str, list[str]]:
    """(callback URL, field names) of the app's WhatsApp webhook subscription; ("", []) when there is none.
    Needs META_APP_ID and APP_SECRET (an app access token). Raises GraphRequestError, ConfigError."""
    url, token = _app_subscriptions(settings)
    read = client.get(url, params={"access_token": token})
    if read.status_code != 200:
        raise GraphRequestError(f"GET app subscriptions failed: {read.status_code} {_error_message(read)}")
    for item in read.json().get("data", []):
        if item.get("object") == WEBHOOK_OBJECT:
            return str(item.get("callback_url", "")), [str(f.get("name")) for f in item.get("fields", [])]
    return "", []


def subscribe_fields(settings: Settings, client: httpx.Client) -> list[str]:
    """Add WANTED_FIELDS to the app's WhatsApp webhook subscription (keeping its callback URL and other fields);
    returns the fields read back. Raises GraphRequestError, ConfigError."""
    callback, fields = app_webhook_fields(settings, client)
    if not callback:
        raise GraphRequestError("the app has no WhatsApp webhook callback URL yet (set it in the App Dashboard first)")
    if is_placeholder(settings.verify_token):
        raise ConfigError("subscribing webhook fields needs VERIFY_TOKEN (Meta verifies the callback with it)")
    url, token = _app_subscriptions(settings)
    wanted = list(dict.fromkeys([*fields, *WANTED_FIELDS]))
    posted = client.post(
        url,
        data={
            "object": WEBHOOK_OBJECT,
            "callback_url": callback,
            "fields": ",".join(wanted),
            "verify_token": settings.verify_token.get_secret_value(),
            "access_token": token,
        },
    )
    if posted.status_code != 200:
        raise GraphRequestError(f"POST app subscriptions failed: {posted.status_code} {_error_message(posted)}")
    return app_webhook_fields(settings, client)[1]


def _app_subscriptions(settings: Settings) -> tuple[str, str]:
    if is_placeholder(settings.meta_app_id) or is_placeholder(settings.app_secret):
        raise ConfigError("the app's webhook fields need META_APP_ID and APP_SECRET (an app access token)")
    token = f"{settings.meta_app_id}|{settings.app_secret.get_secret_value()}"
    return f"{settings.graph_base}/{settings.meta_app_id}/subscriptions", token
