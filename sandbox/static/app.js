// The sandbox's chat page. Everything it sends goes to the sandbox's JSON API, which signs it as a Meta webhook
// and POSTs it to the API's /webhook; replies come back as Graph calls and are pushed here over SSE.
"use strict";

const DEFAULT_USERS = [
  { label: "Ana · +1 555 000 1111", from: "15550001111", name: "Ana" },
  { label: "Ben · +44 7700 900123", from: "447700900123", name: "Ben" },
  { label: "@cleo · username, no phone", user_id: "US.13491208655302741918", username: "cleo", name: "Cleo" },
];
const $ = (id) => document.getElementById(id);
const state = { users: [], current: null, messages: new Map(), typingTimer: null, recorder: null, file: null };

function address(user) { return user.from || user.user_id; }
function loadUsers() {
  let extra = [];
  try { extra = JSON.parse(localStorage.getItem("sandbox-users") || "[]"); } catch (_) { extra = []; }
  state.users = DEFAULT_USERS.concat(extra);
  const select = $("user-select");
  select.innerHTML = "";
  for (const user of state.users) {
    const option = document.createElement("option");
    option.value = address(user);
    option.textContent = user.label;
    select.appendChild(option);
  }
  const saved = localStorage.getItem("sandbox-current");
  select.value = state.users.some((u) => address(u) === saved) ? saved : address(state.users[0]);
}
function currentUser() { return state.users.find((u) => address(u) === $("user-select").value); }
function sender() {
  const user = currentUser();
  return user.from ? { from: user.from, name: user.name } : { user_id: user.user_id, username: user.username, name: user.name };
}

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = !text;
  if (text) setTimeout(() => { if (box.textContent === text) box.hidden = true; }, 8000);
}

function ticks(message) {
  if (message.direction !== "in") return "";
  if (message.status === "failed") return `<span class="ticks failed" title="${escapeHtml(message.error || "failed")}">⚠</span>`;
  const read = message.status === "read";
  return `<span class="ticks ${read ? "read" : ""}" data-status="${message.status}">✓✓</span>`;
}
function label(message) {
  if (!message) return "";
  if (message.deleted) return "This message was deleted";
  if (message.type === "text") return message.text || "";
  if (message.type === "audio") return message.voice ? "Voice message" : "Audio";
  if (message.type === "image") return message.caption || "Photo";
  if (message.type === "location") return "Location: " + (message.location.name || `${message.location.latitude}, ${message.location.longitude}`);
  return message.type;
}
function body(message) {
  if (message.deleted) return `<div class="text deleted">🚫 ${message.direction === "in" ? "You deleted this message" : "This message was deleted"}</div>`;
  if (message.type === "text") return `<div class="text">${formatWhatsApp(message.text || "")}</div>`;
  if (message.type === "audio") {
    return `<div class="voice ${message.voice ? "voice-note" : ""}"><button type="button" class="play" aria-label="Play">▶</button>` +
      `<audio preload="metadata" src="${escapeHtml(message.url || "")}"></audio><span class="duration"></span></div>`;
  }
  if (message.type === "image") {
    const caption = message.caption ? `<div class="text">${formatWhatsApp(message.caption)}</div>` : "";
    return `<img class="photo" alt="photo" src="${escapeHtml(message.url || "")}">${caption}`;
  }
  if (message.type === "location") {
    const loc = message.location;
    const map = `https://www.openstreetmap.org/?mlat=${loc.latitude}&mlon=${loc.longitude}#map=16/${loc.latitude}/${loc.longitude}`;
    const name = loc.name ? `<b>${escapeHtml(loc.name)}</b><br>` : "";
    return `<div class="text location">${name}<a href="${map}" target="_blank" rel="noopener">${loc.latitude}, ${loc.longitude}</a></div>`;
  }
  return `<div class="text">${escapeHtml(message.text || message.type)}</div>`;
}
function render(message) {
  let node = document.querySelector(`[data-id="${CSS.escape(message.id)}"]`);
  const fresh = !node;
  if (fresh) {
    node = document.createElement("div");
    node.dataset.id = message.id;
  }
  const reacted = message.reaction || message.user_reaction;
  // A voice note being played survives a re-render (its ticks, a reaction, the message it quotes): same audio, same
  // element, so playback goes on.
  const voice = node.querySelector(".voice");
  const heard = ["playing", "played"].filter((name) => node.classList.contains(name));
  node.className = `bubble ${message.direction} type-${message.type}${reacted ? " reacted" : ""}${message.deleted ? " deleted" : ""}`;
  node.classList.add(...heard);
  node.dataset.status = message.status;
  const quoted = message.reply_to ? state.messages.get(message.reply_to) : null;
  const quote = quoted ? `<div class="quoted"><span>${quoted.direction === "in" ? "You" : "Loopera"}</span>${escapeHtml(label(quoted))}</div>` : "";
  const time = new Date(message.time * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const edited = message.edited && !message.deleted ? `<span class="edited">edited</span> ` : "";
  const reaction = message.reaction ? `<span class="reaction">${escapeHtml(message.reaction)}</span>` : "";
  const mine = message.user_reaction ? `<span class="reaction user-reaction" title="your reaction">${escapeHtml(message.user_reaction)}</span>` : "";
  const menuOpen = Boolean(node.querySelector(".actions:not([hidden])"));  // a status update must not close it
  node.innerHTML = `${quote}${body(message)}<div class="meta">${edited}${time} ${ticks(message)}</div>${reaction}${mine}${actions(message)}`;
  const redrawn = node.querySelector(".voice");
  const same = voice && redrawn && voice.querySelector("audio").getAttribute("src") === redrawn.querySelector("audio").getAttribute("src");
  if (same) redrawn.replaceWith(voice);  // already wired
  else {
    if (voice) voice.querySelector("audio").pause();  // e.g. deleted: a detached element would play on
    wireAudio(node);
  }
  wireActions(node, message, menuOpen);
  if (fresh) {
    $("messages").appendChild(node);
    $("messages").scrollTop = $("messages").scrollHeight;
  }
}
// A voice note's length as WhatsApp shows it: m:ss (75 s is 1:15).
function clock(seconds) {
  const total = Math.round(seconds);
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
}
// What a user can do to a bubble, as in WhatsApp: edit or delete their own message, react to the bot's.
const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];
function actions(message) {
  if (message.deleted || message.status === "failed") return "";
  let buttons = "";
  if (message.direction === "in") {
    if (message.type === "text" || (message.type === "image" && message.caption)) {
      buttons += `<button type="button" data-action="edit">Edit</button>`;
    }
    buttons += `<button type="button" data-action="delete">Delete</button>`;
  } else {
    buttons += REACTIONS.map((emoji) => `<button type="button" data-action="react" data-emoji="${emoji}" aria-label="React ${emoji}" title="React ${emoji}">${emoji}</button>`).join("");
    if (message.user_reaction) buttons += `<button type="button" data-action="react" data-emoji="">Remove reaction</button>`;
  }
  return `<button type="button" class="more" aria-label="Message actions" aria-expanded="false">⋯</button>` +
    `<div class="actions" role="group" aria-label="Message actions" hidden>${buttons}</div>`;
}
function wireActions(node, message, open) {
  const more = node.querySelector(".more");
  if (!more) return;
  const menu = node.querySelector(".actions");
  const show = (visible) => {
    menu.hidden = !visible;
    more.setAttribute("aria-expanded", String(visible));
  };
  show(open);
  more.addEventListener("click", () => {
    show(menu.hidden);
    // The newest bubble's menu opens below the fold: bring its buttons into view.
    if (!menu.hidden) menu.scrollIntoView({ block: "nearest" });
  });
  for (const button of menu.querySelectorAll("button")) {
    button.addEventListener("click", () => {
      show(false);
      const action = button.dataset.action;
      if (action === "react") act(message.id, "reaction", { emoji: button.dataset.emoji });
      else if (action === "delete" && confirm("Delete this message for everyone?")) act(message.id, "delete", {});
      else if (action === "edit") {
        const before = message.type === "image" ? message.caption : message.text;
        const text = prompt(message.type === "image" ? "Edit caption" : "Edit message", before || "");
        if (text !== null && text.trim() && text !== before) act(message.id, "edit", { text });
      }
    });
  }
}
async function act(id, verb, payload) {
  const answer = await fetch(`/api/messages/${encodeURIComponent(id)}/${verb}`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(payload),
  });
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) showError(data.error || `the sandbox answered ${answer.status}`);
  else if (data.message) accept(data.message);
}
function wireAudio(node) {
  const audio = node.querySelector("audio");
  const button = node.querySelector(".play");
  if (!audio || !button) return;
  button.addEventListener("click", () => { if (audio.paused) audio.play(); else audio.pause(); });
  audio.addEventListener("play", () => { button.textContent = "❚❚"; node.classList.add("playing"); });
  audio.addEventListener("pause", () => { button.textContent = "▶"; });
  audio.addEventListener("ended", () => { button.textContent = "▶"; node.classList.add("played"); });
  // Chromium often knows an OGG's length only after its metadata (duration Infinity until then): show it when known.
  const showDuration = () => {
    if (isFinite(audio.duration)) node.querySelector(".duration").textContent = clock(audio.duration);
  };
  audio.addEventListener("loadedmetadata", showDuration);
  audio.addEventListener("durationchange", showDuration);
}
function accept(message) {
  const known = state.messages.has(message.id);
  state.messages.set(message.id, message);
  if (message.user !== address(currentUser())) return;
  render(message);
  // An edited or deleted message changes the quote in every reply to it.
  if (known) for (const reply of state.messages.values()) if (reply.reply_to === message.id) render(reply);
}
function setTyping(on, seconds) {
  clearTimeout(state.typingTimer);
  $("presence").textContent = on ? "typing…" : "online";
  $("presence").classList.toggle("typing", on);
  if (on) state.typingTimer = setTimeout(() => setTyping(false), (seconds || 25) * 1000);
}

async function loadConversation() {
  localStorage.setItem("sandbox-current", $("user-select").value);
  $("messages").innerHTML = "";
  setTyping(false);
  const answer = await fetch(`/api/conversations/${encodeURIComponent($("user-select").value)}`);
  for (const message of (await answer.json()).messages) accept(message);
}

async function post(init) {
  const answer = await fetch("/api/messages", init);
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) showError(data.error || `the sandbox answered ${answer.status}`);
  else if (data.message) accept(data.message);
  return answer.ok;
}
function postJson(payload) {
  return post({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...sender(), ...payload }) });
}
function postFile(blob, filename, extra) {
  const form = new FormData();
  for (const [key, value] of Object.entries({ ...sender(), ...extra })) if (value) form.append(key, value);
  form.append("file", blob, filename);
  return post({ method: "POST", body: form });
}

async function onSubmit(event) {
  event.preventDefault();
  if (state.file) {
    const file = state.file;
    clearAttachment();
    await postFile(file, file.name, { caption: $("caption").value.trim() });
    return;
  }
  const text = $("text").value;
  if (!text.trim()) return;
  $("text").value = "";
  await postJson({ text });
}
function clearAttachment() {
  state.file = null;
  $("file").value = "";
  $("attachment").hidden = true;
}
function onFile() {
  const file = $("file").files[0];
  if (!file) return;
  state.file = file;
  $("attachment-name").textContent = file.name;
  $("caption").value = "";
  $("caption").hidden = !file.type.startsWith("image/");
  $("attachment").hidden = false;
}

const MIC_ICON = document.getElementById("mic").innerHTML;
async function toggleRecording() {
  const mic = $("mic");
  if (state.recorder) {
    state.recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    showError(`no microphone: ${error.message}. Attach an audio file instead.`);
    return;
  }
  const type = MediaRecorder.isTypeSupported("audio/webm;codecs=opus") ? "audio/webm;codecs=opus" : "";
  const recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
  const chunks = [];
  recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
  recorder.onstop = async () => {
    stream.getTracks().forEach((track) => track.stop());
    state.recorder = null;
    mic.classList.remove("recording");
    mic.innerHTML = MIC_ICON;
    // WebM/Opus from the browser; the sandbox remuxes it into OGG/Opus, as WhatsApp sends voice notes.
    await postFile(new Blob(chunks, { type: recorder.mimeType || "audio/webm" }), "voice.webm", { voice: "true" });
  };
  recorder.start();
  state.recorder = recorder;
  mic.classList.add("recording");
  mic.textContent = "■";
}

function toggleLocationForm() {
  const form = $("location-form");
  form.hidden = !form.hidden;
  if (!form.hidden && navigator.geolocation && !$("lat").value) {
    navigator.geolocation.getCurrentPosition((pos) => {
      $("lat").value = pos.coords.latitude.toFixed(5);
      $("lon").value = pos.coords.longitude.toFixed(5);
    }, () => {});
  }
}
async function onLocation(event) {
  event.preventDefault();
  const ok = await postJson({ location: { latitude: Number($("lat").value), longitude: Number($("lon").value), name: $("place").value.trim() } });
  if (ok) $("location-form").hidden = true;
}

function addUser() {
  const answer = prompt("Phone number in digits (e.g. 4917612345678), or @username for a user without a phone number:");
  if (!answer) return;
  const value = answer.trim();
  let user;
  if (value.startsWith("@")) {
    const digits = Array.from(crypto.getRandomValues(new Uint8Array(10)), (b) => b % 10).join("");
    user = { label: `${value} · username, no phone`, user_id: `US.${digits}`, username: value.slice(1), name: value.slice(1) };
  } else if (/^\d{6,15}$/.test(value)) {
    user = { label: `+${value}`, from: value, name: `User ${value.slice(-4)}` };
  } else {
    showError("give digits (6 to 15) or @username");
    return;
  }
  const extra = JSON.parse(localStorage.getItem("sandbox-users") || "[]");
  extra.push(user);
  localStorage.setItem("sandbox-users", JSON.stringify(extra));
  loadUsers();
  $("user-select").value = address(user);
  loadConversation();
}

function listen() {
  const events = new EventSource("/api/events");
  events.onmessage = (event) => {
    const data = JSON.parse(event.data);
    if (data.event === "message") accept(data.message);
    else if (data.event === "typing" && data.user === address(currentUser())) setTyping(data.on, data.seconds);
  };
  events.onopen = () => { document.body.dataset.live = "yes"; loadConversation(); };
}

async function showMissing() {
  const info = await (await fetch("/api/info")).json();
  if (info.missing.length) {
    $("banner").innerHTML = `Missing: <b>${info.missing.join(", ")}</b>. The bot answers every message with what to do. ` +
      `Put your key (free at <a href="https://console.groq.com/keys" target="_blank" rel="noopener">console.groq.com</a>) in <code>.env</code> and restart <code>make run</code>.`;
    $("banner").hidden = false;
  }
}

loadUsers();
$("user-select").addEventListener("change", loadConversation);
$("composer").addEventListener("submit", onSubmit);
$("file").addEventListener("change", onFile);
$("attachment-cancel").addEventListener("click", clearAttachment);
$("mic").addEventListener("click", toggleRecording);
$("location").addEventListener("click", toggleLocationForm);
$("location-form").addEventListener("submit", onLocation);
$("add-user").addEventListener("click", addUser);
showMissing();
listen();
