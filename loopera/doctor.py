"""`loopera doctor`: the common WhatsApp Cloud API setup mistakes, run against the live deployment's configuration.

Each check returns one or more `Result`s with a status and, for every failure, the exact fix. The checks only read
(plus one tiny TTS request, skippable), so doctor is safe to run against production at any time. It uses plain
httpx (no Groq SDK, no Celery), so it runs in every image.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from loopera.checks import Result, Status
from loopera.doctor_redis import check_redis
from loopera.subscribe import GraphRequestError, app_webhook_fields
from shared.config import Settings, is_placeholder

__all__ = ["Doctor", "Result", "Status", "render_table"]


# Ids old tutorials use: Groq retired them. id -> replacement.
# Source: https://console.groq.com/docs/deprecations
RETIRED_GROQ_MODELS = {
    "llama-3.3-70b-versatile": "openai/gpt-oss-120b",
    "meta-llama/llama-4-scout-17b-16e-instruct": "qwen/qwen3.8-27b",
    "playai-tts": "canopylabs/orpheus-v1-english",
    "playai-tts-arabic": "canopylabs/orpheus-arabic-saudi",
}
# Without these the service cannot start or cannot answer; WABA_ID and META_APP_ID only enable deeper checks.
REQUIRED_ENV = ("verify_token", "app_secret", "whatsapp_token", "phone_number_id", "groq_api_key")
DIAGNOSTIC_ENV = ("waba_id", "meta_app_id")
TOKEN_EXPIRY_WARNING_SECONDS = 7 * 24 * 3600


class Doctor:
    def __init__(self, settings: Settings, http: httpx.Client | None = None) -> None:
        self.s = settings
        self.http = http or httpx.Client(timeout=10)

    def __enter__(self) -> Doctor:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    # --- helpers ----------------------------------------------------------------------------------------
    def _graph(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.s.whatsapp_token.get_secret_value()}"}
        response = self.http.request(method, f"{self.s.graph_base}/{path.lstrip('/')}", headers=headers, **kwargs)
        return response.status_code, _json(response)

    def _groq(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.s.groq_api_key.get_secret_value()}"}
        return self.http.request(method, f"{self.s.groq_base_url}/openai/v1/{path}", headers=headers, **kwargs)

    # --- checks -----------------------------------------------------------------------------------------
    def check_env(self) -> list[Result]:
        missing = self.s.missing_secrets(REQUIRED_ENV)
        results = [
            Result(
                "env.required",
                Status.FAIL if missing else Status.PASS,
                f"missing or placeholder: {', '.join(missing)}" if missing else "all required variables set",
                "Set them in the service's environment (see .env.example); placeholders like 'changeme' count as "
                "missing."
                if missing
                else "",
            )
        ]
        optional = self.s.missing_secrets(DIAGNOSTIC_ENV)
        results.append(
            Result(
                "env.diagnostic",
                Status.WARN if optional else Status.PASS,
                f"not set: {', '.join(optional)}" if optional else "WABA_ID and META_APP_ID set",
                "WABA_ID (the webhook's entry[].id) enables the subscribed_apps check; META_APP_ID (App Dashboard "
                "> Settings > Basic) enables the token check."
                if optional
                else "",
            )
        )
        if self.s.dev_insecure_skip_signature:
            results.append(
                Result(
                    "env.signature",
                    Status.FAIL,
                    "DEV_INSECURE_SKIP_SIGNATURE is on: anyone can forge webhooks",
                    "Unset DEV_INSECURE_SKIP_SIGNATURE and set APP_SECRET.",
                )
            )
        return results

    def check_phone_number_id(self) -> list[Result]:
        """The most common confusion: the WABA id (webhook entry[].id) pasted as PHONE_NUMBER_ID. A phone number
        node has `display_phone_number`; asking a WABA node for it is Graph error 100 naming the node type, and
        only a WABA has the `phone_numbers` edge, whose listing is the fix."""
        name = "graph.phone_number_id"
        pid = self.s.phone_number_id
        if is_placeholder(pid) or is_placeholder(self.s.whatsapp_token):
            return [Result(name, Status.SKIP, "needs PHONE_NUMBER_ID and WHATSAPP_TOKEN")]
        status, body = self._graph("GET", pid, params={"fields": "id,display_phone_number,verified_name"})
        if status == 200 and body.get("display_phone_number"):
            return [
                Result(name, Status.PASS, f"{pid} is the number {body['display_phone_number']}"),
                *self._in_waba(pid),
            ]
        code, message = _graph_error(body)
        if code in (0, 190):
            return [Result(name, Status.FAIL, f"token rejected: {message}", _TOKEN_FIX)]
        status, edge = self._graph("GET", f"{pid}/phone_numbers", params={"fields": "id,display_phone_number"})
        numbers = edge.get("data") if status == 200 else None
        if numbers:
            listing = ", ".join(f"{n['id']} ({n.get('display_phone_number', '?')})" for n in numbers)
            return [
                Result(
                    name,
                    Status.FAIL,
                    f"PHONE_NUMBER_ID={pid} is a WhatsApp Business Account (WABA) id, not a phone number id",
                    f"Set WABA_ID={pid} and PHONE_NUMBER_ID to one of: {listing}.",
                )
            ]
        return [
            Result(
                name,
                Status.FAIL,
                f"Graph does not know {pid} as a phone number: {message or status}",
                "Copy the Phone number ID from WhatsApp Manager > API Setup (not the WABA id, not the phone number).",
            )
        ]

    def _in_waba(self, pid: str) -> list[Result]:
        """A test number and a production number live in different WABAs: webhooks then come from one account
        while replies go out of the other. Compare with WABA_ID's own list."""
        if is_placeholder(self.s.waba_id):
            return []
        status, body = self._graph("GET", f"{self.s.waba_id}/phone_numbers", params={"fields": "id"})
        if status != 200:
            return []  # the subscription check reports an unreadable WABA_ID
        ids = [str(n.get("id")) for n in body.get("data", [])]
        if pid in ids:
            return [Result("graph.phone_in_waba", Status.PASS, f"{pid} belongs to WABA_ID {self.s.waba_id}")]
        return [
            Result(
                "graph.phone_in_waba",
                Status.FAIL,
                f"PHONE_NUMBER_ID {pid} is not a number of WABA_ID {self.s.waba_id} "
                f"(it has: {', '.join(ids) or 'none'})",
                "Use the phone number id and the WABA id of the same account (WhatsApp Manager > API Setup).",
            )
        ]

    def check_token(self) -> list[Result]:
        name = "graph.token"
        if is_placeholder(self.s.meta_app_id) or is_placeholder(self.s.app_secret):
            return [Result(name, Status.SKIP, "needs META_APP_ID and APP_SECRET for debug_token", "Set META_APP_ID.")]
        if is_placeholder(self.s.whatsapp_token):
            return [Result(name, Status.SKIP, "WHATSAPP_TOKEN not set")]
        app_token = f"{self.s.meta_app_id}|{self.s.app_secret.get_secret_value()}"
        response = self.http.get(
            f"{self.s.graph_base}/debug_token",
            params={"input_token": self.s.whatsapp_token.get_secret_value(), "access_token": app_token},
        )
        body = _json(response)
        if response.status_code != 200:
            _, message = _graph_error(body)
            return [
                Result(
                    name,
                    Status.FAIL,
                    f"debug_token refused the app credentials: {message}",
                    "META_APP_ID and APP_SECRET must belong to the same Meta app (App Dashboard > Settings > Basic).",
                )
            ]
        data = body.get("data", {})
        if not data.get("is_valid"):
            reason = data.get("error", {}).get("message", "invalid")
            return [Result(name, Status.FAIL, f"WHATSAPP_TOKEN is not valid: {reason}", _TOKEN_FIX)]
        results = []
        expires_at = int(data.get("expires_at") or 0)
        if expires_at == 0:
            results.append(Result(name, Status.PASS, f"valid, never expires ({data.get('type', 'token')})"))
        else:
            left = expires_at - time.time()
            status = Status.FAIL if left < TOKEN_EXPIRY_WARNING_SECONDS else Status.WARN
            results.append(Result(name, status, f"valid but expires in {max(0, int(left // 3600))} h", _TOKEN_FIX))
        scopes = set(data.get("scopes", []))
        missing = [s for s in ("whatsapp_business_messaging", "whatsapp_business_management") if s not in scopes]
        results.append(
            Result(
                "graph.token_scopes",
                Status.FAIL if missing else Status.PASS,
                f"missing scopes: {', '.join(missing)}" if missing else "whatsapp_business_messaging + management",
                "Generate the System User token with both whatsapp_business_* permissions." if missing else "",
            )
        )
        if str(data.get("app_id", self.s.meta_app_id)) != self.s.meta_app_id:
            results.append(
                Result(
                    "graph.token_app",
                    Status.FAIL,
                    f"the token belongs to app {data.get('app_id')}, not META_APP_ID={self.s.meta_app_id}",
                    "Use a token of the app whose APP_SECRET signs the webhooks.",
                )
            )
        return results

    def check_subscription(self) -> list[Result]:
        """Shadow delivery: verification succeeded, yet no webhook ever arrives, because the app is not
        subscribed to the WABA (Graph API reference: WhatsApp Business Account subscribed_apps)."""
        name = "graph.subscribed_apps"
        if is_placeholder(self.s.waba_id):
            return [Result(name, Status.SKIP, "WABA_ID not set", "Set WABA_ID (the webhook's entry[].id).")]
        status, body = self._graph("GET", f"{self.s.waba_id}/subscribed_apps")
        if status != 200:
            code, message = _graph_error(body)
            fix = _TOKEN_FIX if code in (0, 190) else "Check WABA_ID (WhatsApp Manager > Account tools)."
            return [Result(name, Status.FAIL, f"cannot read subscribed_apps: {message}", fix)]
        apps = body.get("data", [])
        ours = [
            a
            for a in apps
            if is_placeholder(self.s.meta_app_id)
            or str(a.get("whatsapp_business_api_data", {}).get("id")) == self.s.meta_app_id
        ]
        if not ours:
            return [
                Result(
                    name,
                    Status.FAIL,
                    "the app is not subscribed to the WABA: Meta verifies the webhook but delivers nothing",
                    f"Run `loopera subscribe` (POST /{self.s.waba_id}/subscribed_apps).",
                )
            ]
        override = ours[0].get("override_callback_uri")
        subscribed = Result(name, Status.PASS, "subscribed" + (f", callback override {override}" if override else ""))
        return [subscribed, self.check_webhook_fields()]

    def check_webhook_fields(self) -> Result:
        """The app's WhatsApp webhook fields: `messages` (nothing works without it) and `smb_message_echoes` (a
        person's replies from the WhatsApp Business app pause the bot: docs/handoff.md)."""
        name = "graph.webhook_fields"
        if is_placeholder(self.s.meta_app_id) or is_placeholder(self.s.app_secret):
            return Result(name, Status.SKIP, "needs META_APP_ID and APP_SECRET (an app access token)")
        try:
            _, fields = app_webhook_fields(self.s, self.http)
        except GraphRequestError as exc:
            return Result(name, Status.WARN, str(exc), "Check META_APP_ID and APP_SECRET.")
        if "messages" not in fields:
            return Result(name, Status.FAIL, "the app is not subscribed to `messages`", _FIELDS_FIX)
        if "smb_message_echoes" not in fields:
            return Result(
                name,
                Status.WARN,
                "no `smb_message_echoes`: a person replying from the WhatsApp Business app will not pause the bot",
                _FIELDS_FIX,
            )
        return Result(name, Status.PASS, ", ".join(fields))

    def check_redis(self) -> list[Result]:
        return check_redis(self.s)

    def check_ffmpeg(self) -> list[Result]:
        name = "ffmpeg"
        binary = shutil.which(self.s.ffmpeg_binary)
        if binary is None:
            return [Result(name, Status.FAIL, f"{self.s.ffmpeg_binary} not found (FFMPEG_BINARY / PATH)", _FFMPEG_FIX)]
        try:
            encoders = subprocess.run(
                [binary, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=20, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [Result(name, Status.FAIL, f"ffmpeg does not run: {type(exc).__name__}", _FFMPEG_FIX)]
        if "libopus" not in encoders:
            return [
                Result(name, Status.FAIL, "ffmpeg has no libopus encoder (voice replies need OGG/Opus)", _FFMPEG_FIX)
            ]
        return [Result(name, Status.PASS, f"{binary} with libopus")]

    def check_groq(self) -> list[Result]:
        if is_placeholder(self.s.groq_api_key):
            return [Result("groq.key", Status.SKIP, "GROQ_API_KEY not set")]
        response = self._groq("GET", "models")
        if response.status_code == 401:
            return [
                Result(
                    "groq.key",
                    Status.FAIL,
                    "GROQ_API_KEY rejected (401)",
                    "Create a key at https://console.groq.com/keys.",
                )
            ]
        if response.status_code != 200:
            return [
                Result("groq.key", Status.FAIL, f"GET /models answered {response.status_code}", "Check GROQ_BASE_URL.")
            ]
        served = {m.get("id") for m in _json(response).get("data", []) if m.get("active", True)}
        results = [Result("groq.key", Status.PASS, f"key valid, {len(served)} models served")]
        for var, model in self._configured_models():
            check = f"groq.model.{var.lower()}"
            if model in served:
                results.append(Result(check, Status.PASS, f"{model} served"))
            elif model in RETIRED_GROQ_MODELS:
                results.append(
                    Result(check, Status.FAIL, f"{model} is retired", f"Set {var}={RETIRED_GROQ_MODELS[model]}.")
                )
            else:
                results.append(
                    Result(
                        check,
                        Status.FAIL,
                        f"{model} is not served to this key",
                        f"Set {var} to an id from GET /openai/v1/models.",
                    )
                )
        return results

    def _configured_models(self) -> list[tuple[str, str]]:
        pairs = [
            ("CHAT_MODEL", self.s.chat_model),
            ("STT_MODEL", self.s.stt_model),
            ("TTS_MODEL", self.s.tts_model),
            ("VISION_MODEL", self.s.vision_model),
            ("TTS_ARABIC_MODEL", self.s.tts_arabic_model),
        ]
        return [(var, model) for var, model in pairs if model]

    def check_tts_terms(self) -> list[Result]:
        """Orpheus needs its terms accepted by an org admin; only a request tells (400 model_terms_required).
        One 2-character request: it counts against the TTS quota (100 requests/day on the free tier)."""
        name = "groq.tts_terms"
        if not self.s.tts_model or is_placeholder(self.s.groq_api_key):
            return [Result(name, Status.SKIP, "no TTS_MODEL or GROQ_API_KEY")]
        response = self._groq(
            "POST",
            "audio/speech",
            json={"model": self.s.tts_model, "voice": self.s.tts_voice, "input": "ok", "response_format": "wav"},
        )
        if response.status_code == 200:
            return [Result(name, Status.PASS, f"{self.s.tts_model} answered")]
        code = _json(response).get("error", {}).get("code", "")
        console = f"https://console.groq.com/playground?model={quote(self.s.tts_model, safe='')}"
        if code == "model_terms_required":
            return [
                Result(
                    name,
                    Status.FAIL,
                    f"terms for {self.s.tts_model} not accepted",
                    f"An org admin accepts them at {console}",
                )
            ]
        return [Result(name, Status.FAIL, f"TTS request failed: {response.status_code} {code}", f"See {console}")]

    def checks(self) -> dict[str, Callable[[], list[Result]]]:
        return {
            "env": self.check_env,
            "phone_number_id": self.check_phone_number_id,
            "token": self.check_token,
            "subscription": self.check_subscription,
            "redis": self.check_redis,
            "ffmpeg": self.check_ffmpeg,
            "groq": self.check_groq,
            "tts_terms": self.check_tts_terms,
        }

    def run(self, skip: frozenset[str] = frozenset()) -> list[Result]:
        results: list[Result] = []
        for key, check in self.checks().items():
            if key in skip:
                results.append(Result(key, Status.SKIP, "skipped (--skip)"))
                continue
            try:
                results.extend(check())
            except httpx.HTTPError as exc:
                results.append(Result(key, Status.FAIL, f"request failed: {type(exc).__name__}", _NETWORK_FIX))
        return results


_TOKEN_FIX = (
    "Use a System User token (Business Settings > System users > Generate token, never expires) with "  # noqa: S105
    "whatsapp_business_messaging and whatsapp_business_management; put it in WHATSAPP_TOKEN."
)
_FFMPEG_FIX = "Install ffmpeg built with libopus (Debian: apt-get install ffmpeg); use the worker image."
_NETWORK_FIX = "Check network egress and GRAPH_API_URL / GROQ_BASE_URL."


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


_FIELDS_FIX = "Run `loopera subscribe` (or App Dashboard > WhatsApp > Configuration > Webhook fields)."


def _graph_error(body: dict[str, Any]) -> tuple[int | None, str]:
    error = body.get("error") or {}
    return error.get("code"), str(error.get("message", ""))


def render_table(results: list[Result]) -> str:
    marks = {Status.PASS: "PASS", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIP: "skip"}
    width = max(len(r.check) for r in results)
    lines = []
    for r in results:
        lines.append(f"{marks[r.status]}  {r.check.ljust(width)}  {r.detail}")
        if r.fix and r.status in (Status.FAIL, Status.WARN):
            lines.append(f"{'':4}  {'':{width}}  fix: {r.fix}")
    failed = sum(r.status is Status.FAIL for r in results)
    lines.append(f"\n{failed} failed, {sum(r.status is Status.WARN for r in results)} warnings")
    return "\n".join(lines)
