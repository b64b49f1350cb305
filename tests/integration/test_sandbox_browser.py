"""The sandbox page in a real headless Chromium (Debian's, driven by Playwright), against `make run`'s whole stack
(Redis, API, three pools, sandbox) with the Groq fake behind the workers: type -> reply, a voice note from the fake
microphone -> OGG/Opus at the workers and a voice-note reply that plays, a photo -> the vision answer, two users ->
two memories, a reaction to the bot's message shown on it and never answered. More tests prove the page reaches
the service only through the sandbox's signed webhooks, and edits and deletes the user's own messages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.dev_stack import DevStack, chatting_stack
from tests.fakes.groq_fake import API_KEY, GroqFake
from tests.fakes.server import wait_for
from tests.sandbox_harness import InProcessSandbox, RecordingApi
from tests.webhooks import MEDIA_FIXTURES

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():  # pragma: no cover - .ci/run installs it
    pytest.skip("needs Debian's chromium (apt-get install chromium chromium-driver)", allow_module_level=True)
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each test leaves its screenshot (SANDBOX_SCREENSHOTS=<dir> keeps them, e.g. for docs/img)."""
    target = os.environ.get("SANDBOX_SCREENSHOTS")
    return Path(target) if target else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def fake_mic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Speech as the WAV Chromium's fake microphone plays (from the voice-note fixture)."""
    wav = tmp_path_factory.mktemp("mic") / "speech.wav"
    source = MEDIA_FIXTURES / "voice-en.ogg"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-ac", "1", "-ar", "48000", str(wav)], check=True)
    return wav


@pytest.fixture(scope="module")
def browser(fake_mic: Path) -> Iterator[Any]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",  # CI runs as root
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={fake_mic}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, groq_fake: GroqFake) -> Iterator[DevStack]:
    with chatting_stack(tmp_path_factory.mktemp("make-run"), groq_fake.url, API_KEY) as running:
        yield running


@pytest.fixture
def page(browser: Any, stack: DevStack) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 900, "height": 760})
    context.grant_permissions(["microphone"], origin=stack.sandbox_url)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.goto(stack.sandbox_url)
    tab.wait_for_selector("body[data-live=yes]")  # the SSE stream is open
    yield tab
    context.close()


def _as(page: Any, address: str) -> None:
    page.select_option("#user-select", address)
    page.wait_for_function("() => document.querySelector('#presence').textContent === 'online'")


def _type(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.press("#text", "Enter")


def test_a_typed_message_gets_the_formatted_reply_with_read_ticks(
    page: Any, groq_fake: GroqFake, screenshots: Path
) -> None:
    groq_fake.chat_reply = lambda body: f"**Hello!** You wrote: *{body['messages'][-1]['content']}* `ok`"
    groq_fake.chat_delay = 2.0  # long enough to see the typing indicator
    _as(page, "15550001111")
    _type(page, "good morning")
    page.wait_for_function("() => document.querySelector('#presence').textContent === 'typing…'")
    reply = page.locator(".bubble.out", has_text="You wrote").last
    reply.wait_for()
    assert reply.locator("b").inner_text() == "Hello!"  # WhatsApp's *bold*, rendered
    assert reply.locator("i").inner_text() == "good morning"
    assert "good morning" in reply.locator(".quoted").inner_text()  # the reply quotes the message
    page.wait_for_selector(".bubble.in[data-status=read] .ticks.read")  # blue ticks: the bot marked it read
    assert page.inner_text("#presence") == "online"  # the reply ends the typing indicator
    page.screenshot(path=str(screenshots / "sandbox-text.png"))


def test_a_photo_with_a_caption_gets_the_vision_answer(page: Any, groq_fake: GroqFake, screenshots: Path) -> None:
    groq_fake.chat_reply = lambda body: (
        "I see a photo." if any(isinstance(m["content"], list) for m in body["messages"]) else "no image"
    )
    _as(page, "15550001111")
    page.set_input_files("#file", str(MEDIA_FIXTURES / "photo.jpg"))
    page.fill("#caption", "what is this?")
    page.click("#send")
    page.locator(".bubble.in.type-image img.photo").last.wait_for()
    page.locator(".bubble.out", has_text="I see a photo.").last.wait_for()
    (_, parts), *_ = groq_fake.image_requests()
    assert parts[0].texts and "what is this?" in " ".join(parts[0].texts)
    page.screenshot(path=str(screenshots / "sandbox-photo.png"))


def test_a_voice_note_from_the_microphone_reaches_the_workers_as_ogg_opus_and_the_reply_plays(
    page: Any, stack: DevStack, groq_fake: GroqFake, screenshots: Path, tmp_path: Path
) -> None:
    _as(page, "15550001111")  # after the text and photo tests: the screenshot shows all three (docs/img/sandbox.png)
    page.click("#mic")
    page.wait_for_selector("#mic.recording")
    page.wait_for_timeout(2500)
    page.click("#mic")
    page.locator(".bubble.in.type-audio").last.wait_for()
    voice_reply = page.locator(".bubble.out.type-audio").last
    voice_reply.wait_for()

    (upload,) = [m for m in _conversation(stack, "15550001111") if m["direction"] == "in" and m["type"] == "audio"]
    assert upload["voice"] is True and upload["mime_type"] == "audio/ogg"
    stream = _ffprobe(httpx.get(f"{stack.sandbox_url}{upload['url']}").content, tmp_path)
    assert stream["format"]["format_name"] == "ogg" and stream["streams"][0]["codec_name"] == "opus"
    transcriptions = groq_fake.calls_to("audio/transcriptions")
    assert transcriptions and transcriptions[-1].file_name == "voice.ogg"  # the worker took it as a voice note

    voice_reply.locator(".play").click()
    page.wait_for_function(
        "() => { const a = [...document.querySelectorAll('.bubble.out.type-audio audio')].pop();"
        " return a && a.currentTime > 0; }"
    )
    page.screenshot(path=str(screenshots / "sandbox-voice.png"))


def test_each_user_has_a_memory_of_their_own(page: Any, groq_fake: GroqFake, screenshots: Path) -> None:
    def recall(body: dict[str, Any]) -> str:
        said = [m["content"] for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], str)]
        return "I remember: " + " | ".join(said)

    groq_fake.chat_reply = recall
    _as(page, "15550001111")
    _type(page, "my name is Ana")
    page.locator(".bubble.out", has_text="my name is Ana").last.wait_for()
    _as(page, "US.13491208655302741918")  # a username user: no phone number, a BSUID
    _type(page, "who am I?")
    cleo = page.locator(".bubble.out", has_text="who am I?").last
    cleo.wait_for()
    assert "Ana" not in cleo.inner_text()
    assert page.locator(".bubble", has_text="my name is Ana").count() == 0  # not on Cleo's screen either
    page.screenshot(path=str(screenshots / "sandbox-users.png"))
    _as(page, "15550001111")
    page.locator(".bubble.in", has_text="my name is Ana").first.wait_for()
    assert page.locator(".bubble", has_text="who am I?").count() == 0


def test_a_reaction_from_the_page_shows_on_the_bots_message_and_gets_no_reply(
    page: Any, stack: DevStack, groq_fake: GroqFake, screenshots: Path
) -> None:
    groq_fake.chat_reply = lambda body: f"Noted: {body['messages'][-1]['content']}"
    _as(page, "447700900123")
    _type(page, "rate this answer")
    answer = page.locator(".bubble.out", has_text="Noted: rate this answer").last
    answer.wait_for()
    answer.get_by_role("button", name="Message actions").click()
    answer.get_by_role("button", name="React 👍").click()
    answer.locator(".user-reaction", has_text="👍").wait_for()
    page.screenshot(path=str(screenshots / "sandbox-reaction.png"))
    # The conversation's mailbox runs in order: once the next message is answered, the reaction has been handled.
    _type(page, "next question")
    page.locator(".bubble.out", has_text="Noted: next question").last.wait_for()
    replies = [m["text"] for m in _conversation(stack, "447700900123") if m["direction"] == "out"]
    assert replies == ["Noted: rate this answer", "Noted: next question"]
    (reacted,) = [m for m in _conversation(stack, "447700900123") if m.get("user_reaction")]
    assert reacted["user_reaction"] == "👍" and reacted["text"] == "Noted: rate this answer"


@contextmanager
def recorded_tab(
    browser: Any, on_request: Callable[[Any], None] | None = None
) -> Iterator[tuple[Any, RecordingApi, InProcessSandbox]]:
    """A live tab on a sandbox whose webhooks go to a recording API (it checks the signature like the real one);
    `on_request` sees every request the page makes, from its first load."""
    api = RecordingApi()
    api.server.start()
    sandbox = InProcessSandbox(api.url).start()
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        if on_request is not None:
            tab.on("request", on_request)
        tab.goto(sandbox.url)
        tab.wait_for_selector("body[data-live=yes]")
        yield tab, api, sandbox
    finally:
        context.close()
        sandbox.stop()
        api.server.stop()


def test_the_page_reaches_the_service_only_through_signed_webhooks(browser: Any) -> None:
    """Every request the page makes goes to the sandbox; every message leaves the sandbox as one signed
    `POST /webhook` (the recording API checks the signature like the real one) and nothing else."""
    seen: list[str] = []
    with recorded_tab(browser, lambda request: seen.append(request.url)) as (tab, api, sandbox):
        _type(tab, "hello")
        tab.click("#location")
        tab.fill("#lat", "52.52")
        tab.fill("#lon", "13.405")
        tab.click("#location-form button")
        tab.set_input_files("#file", str(MEDIA_FIXTURES / "photo.jpg"))
        tab.click("#send")
        wait_for(lambda: len(api.messages()) == 3, what="three webhooks")
    assert [m["type"] for m in api.messages()] == ["text", "location", "image"]
    assert all(method == "POST" and path == "/webhook" and ok for method, path, ok, _ in api.requests)
    allowed = ("/", "/static/", "/api/", "/media/")
    assert seen and all(url.startswith(sandbox.url) for url in seen), seen
    assert all(url[len(sandbox.url) :].startswith(allowed) for url in seen)


def test_the_page_edits_and_deletes_the_users_own_messages(browser: Any) -> None:
    """Edit (the browser's prompt answered with the new words) and Delete (confirmed) from a bubble's actions: one
    signed `edit` and one `revoke` webhook naming the bubbles, which show "edited" and "deleted"."""
    with recorded_tab(browser) as (tab, api, _sandbox):
        tab.on("dialog", lambda dialog: dialog.accept("see you at 5") if dialog.type == "prompt" else dialog.accept())
        _type(tab, "see you at 4")
        _type(tab, "wrong chat, sorry")
        first = tab.locator(".bubble.in", has_text="see you at 4")
        first.get_by_role("button", name="Message actions").click()
        first.get_by_role("button", name="Edit").click()
        tab.locator(".bubble.in", has_text="see you at 5").locator(".edited").wait_for()
        second = tab.locator(".bubble.in", has_text="wrong chat")
        second.get_by_role("button", name="Message actions").click()
        second.get_by_role("button", name="Delete").click()
        tab.locator(".bubble.in.deleted", has_text="You deleted this message").wait_for()
        assert tab.locator(".bubble", has_text="wrong chat").count() == 0
    typed_first, typed_second, edit, revoke = api.messages()
    assert edit["edit"]["original_message_id"] == typed_first["id"]
    assert edit["edit"]["message"]["text"]["body"] == "see you at 5"
    assert revoke["revoke"] == {"original_message_id": typed_second["id"]}
    assert all(ok for _, _, ok, _ in api.requests)


def test_a_voice_notes_length_reads_as_whatsapp_shows_it(browser: Any) -> None:
    with recorded_tab(browser) as (tab, _api, _sandbox):
        shown = tab.evaluate("[4, 59.6, 75, 600].map(clock)")
    assert shown == ["0:04", "1:00", "1:15", "10:00"]


def test_a_voice_note_keeps_playing_while_its_bubble_is_drawn_again(browser: Any) -> None:
    """The bot's voice reply is drawn again when its ticks change or when the message it quotes changes (the bot
    takes its 👀 back right after answering): playback must go on, not restart from silence."""
    reply = '[data-id="wamid.out.voice"] audio'
    with recorded_tab(browser) as (tab, _api, _sandbox):
        tab.set_input_files("#file", str(MEDIA_FIXTURES / "voice-en.ogg"))
        tab.click("#send")
        sent = tab.locator(".bubble.in.type-audio").last
        sent.wait_for()
        inbound = sent.get_attribute("data-id")
        # The bot's voice reply quoting it, as the page's event stream delivers one (its audio: the same file).
        tab.evaluate(
            """(id) => { const m = state.messages.get(id); accept({id: "wamid.out.voice", user: m.user,
               direction: "out", type: "audio", voice: true, url: m.url, reply_to: id, status: "sent",
               time: Date.now() / 1000}); }""",
            inbound,
        )
        tab.locator('[data-id="wamid.out.voice"] .play').click()
        tab.wait_for_function(f"() => document.querySelector('{reply}').currentTime > 0")
        tab.evaluate(
            """(id) => { accept({...state.messages.get(id), reaction: ""});
               accept({...state.messages.get("wamid.out.voice"), status: "read"}); }""",
            inbound,
        )
        assert tab.locator('[data-id="wamid.out.voice"][data-status="read"]').count() == 1  # it was drawn again
        tab.wait_for_function(f"() => document.querySelector('{reply}').currentTime > 0.5")
        assert tab.evaluate(
            f"() => !document.querySelector('{reply}').paused || document.querySelector('{reply}').ended"
        )


def test_the_page_edits_a_photos_caption(browser: Any) -> None:
    """A captioned photo's Edit asks for the caption: one signed `edit` carrying the same photo with the new caption,
    and the bubble shows it with its mark."""
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept("what tree is this?")

    with recorded_tab(browser) as (tab, api, _sandbox):
        tab.on("dialog", answer)
        tab.set_input_files("#file", str(MEDIA_FIXTURES / "photo.jpg"))
        tab.fill("#caption", "what flower is this?")
        tab.click("#send")
        bubble = tab.locator(".bubble.in.type-image", has_text="what flower is this?")
        bubble.get_by_role("button", name="Message actions").click()
        bubble.get_by_role("button", name="Edit").click()
        edited = tab.locator(".bubble.in.type-image", has_text="what tree is this?")
        edited.locator(".edited").wait_for()
        assert edited.locator("img.photo").count() == 1  # still the photo, with its new caption
    assert asked == ["Edit caption"]
    photo, edit = api.messages()
    assert edit["edit"]["original_message_id"] == photo["id"]
    assert edit["edit"]["message"]["image"] == {**photo["image"], "caption": "what tree is this?"}
    assert all(ok for _, _, ok, _ in api.requests)


def test_the_page_says_what_is_missing(browser: Any) -> None:
    sandbox = InProcessSandbox("http://127.0.0.1:9", groq_key_missing=True).start()
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.goto(sandbox.url)
        banner = tab.locator("#banner")
        banner.wait_for()
        assert "GROQ_API_KEY" in banner.inner_text() and ".env" in banner.inner_text()
        _type(tab, "hello")  # and an API that does not answer is named, not swallowed
        tab.locator("#error", has_text="did not answer").wait_for()
        tab.locator(".bubble.in .ticks.failed").wait_for()
    finally:
        context.close()
        sandbox.stop()


def _conversation(stack: DevStack, address: str) -> list[dict[str, Any]]:
    return httpx.get(f"{stack.sandbox_url}/api/conversations/{address}").json()["messages"]


def _ffprobe(data: bytes, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        check=True,
    )
    return dict(json.loads(result.stdout))
