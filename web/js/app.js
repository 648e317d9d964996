// The chat page: one conversation, streamed, restored on reload (its newest page, and older
// pages on demand with "Show earlier messages").
//
// The log on the page always matches the session's history on the server: a
// turn that fails or is stopped before any reply is taken back off the page and
// its text put back in the box (the server kept nothing either); a turn stopped
// mid-reply keeps the partial reply, as the server does.

import { ChatApi, ChatError, loadEndpoints } from "./api.js";
import { renderMarkdown } from "./markdown.js";

const log = document.getElementById("log");
const emptyHint = document.getElementById("empty-hint");
const notice = document.getElementById("notice");
const form = document.getElementById("composer");
const input = document.getElementById("message");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const newChatButton = document.getElementById("new-chat");
const earlierButton = document.getElementById("earlier");

let api;
let turn = null; // {controller} while a reply streams
let resetting = false; // while New chat's DELETE is in flight, nothing is sent
let cooldownUntil = 0;
let cooldownTimer = null;
let older = null; // the cursor of the conversation's older page, or null when all of it is shown
let conversationVersion = 0;

function addMessage(role, text) {
  const message = createMessage(role, text);
  log.append(message.element);
  emptyHint.hidden = true;
  return message;
}

function createMessage(role, text) {
  const element = document.createElement("article");
  element.className = `message ${role}`;
  element.setAttribute("aria-label", role === "user" ? "You" : "Claude");
  const content = document.createElement("div");
  content.className = "content";
  element.append(content);
  setContent({ element, content, role }, text);
  return { element, content, role };
}

function setContent(message, text) {
  if (message.role === "user") message.content.textContent = text; // shown as typed, never as markup
  else message.content.replaceChildren(renderMarkdown(text));
}

function addNote(message, text) {
  const note = document.createElement("p");
  note.className = "note";
  note.textContent = text;
  message.element.append(note);
}

function removeMessages(...messages) {
  for (const message of messages) message.element.remove();
  emptyHint.hidden = log.querySelector(".message") !== null;
}

function clearLog() {
  for (const message of log.querySelectorAll(".message")) message.remove();
  setOlder(null);
  emptyHint.hidden = false;
}

/** The "Show earlier messages" button at the top of the log, there while older pages are left. */
function setOlder(cursor) {
  older = cursor;
  conversationVersion += 1; // a page still loading belongs to the log as it was: it is dropped
  earlierButton.hidden = cursor === null;
  earlierButton.disabled = false;
  earlierButton.removeAttribute("aria-busy");
}

async function loadEarlier() {
  if (older === null || earlierButton.disabled) return;
  const version = conversationVersion;
  earlierButton.disabled = true;
  earlierButton.setAttribute("aria-busy", "true");
  clearNotice();
  try {
    const page = await api.history(older);
    if (version !== conversationVersion) return;
    // Older messages go above the ones shown, and what the reader was looking at stays put.
    const fromBottom = log.scrollHeight - log.scrollTop;
    const first = log.querySelector(".message");
    for (const { role, content } of page.messages) {
      log.insertBefore(createMessage(role, content).element, first);
    }
    log.scrollTop = log.scrollHeight - fromBottom;
    setOlder(page.before);
    // Focus stays on the button while there is more; at the start, it moves to the log itself.
    if (page.before === null) log.focus();
    else earlierButton.focus();
  } catch (error) {
    if (version !== conversationVersion) return;
    earlierButton.disabled = false;
    earlierButton.removeAttribute("aria-busy");
    showNotice(`Could not load earlier messages. ${explain(error)}`, { retry: loadEarlier });
  }
}

function scrollToEnd(force = false) {
  const nearEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  if (force || nearEnd) log.scrollTop = log.scrollHeight;
}

function showNotice(text, { retry = null, kind = "error" } = {}) {
  notice.replaceChildren();
  notice.className = `notice ${kind}`;
  const message = document.createElement("span");
  message.textContent = text;
  notice.append(message);
  if (retry) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Retry";
    button.addEventListener("click", () => {
      clearNotice();
      retry();
    });
    notice.append(button);
  }
  notice.hidden = false;
  return message;
}

function clearNotice() {
  notice.hidden = true;
  notice.replaceChildren();
}

function formatWait(seconds) {
  if (seconds < 60) return `${seconds} s`;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function updateControls() {
  const coolingDown = Date.now() < cooldownUntil;
  sendButton.disabled = turn !== null || coolingDown || resetting;
  newChatButton.disabled = resetting;
  sendButton.hidden = turn !== null;
  stopButton.hidden = turn === null;
  form.setAttribute("aria-busy", String(turn !== null));
}

/** The rate limit's refusal: a countdown from Retry-After, sending disabled until it ends. */
function startCooldown(seconds, limit) {
  const reason =
    limit === "tokens" ? "You have used today's allowance of replies." : "You're sending messages too quickly.";
  clearInterval(cooldownTimer);
  cooldownUntil = Date.now() + seconds * 1000;
  const message = showNotice("", { kind: "rate-limit" });
  const tick = () => {
    const left = Math.ceil((cooldownUntil - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(cooldownTimer);
      cooldownTimer = null;
      clearNotice();
      updateControls();
      return;
    }
    message.textContent = `${reason} You can send again in ${formatWait(left)}.`;
  };
  tick();
  cooldownTimer = setInterval(tick, 1000);
  updateControls();
}

function explain(error) {
  if (error.code === "network") return "Could not reach the chat service. Check your connection and try again.";
  if (error.code === "upstream_unavailable") return "Claude is busy right now. Please try again in a moment.";
  if (error.code === "upstream_timeout") return "Claude took too long to answer. Please try again.";
  if (error.code === "incomplete") return "The reply was cut off before it finished. Please try again.";
  return error.message || "Something went wrong. Please try again.";
}

function restoreInput(text) {
  if (!input.value.trim()) {
    input.value = text;
    autosize();
  }
}

async function send(text) {
  if (turn !== null || resetting || Date.now() < cooldownUntil) return;
  clearNotice();
  const question = addMessage("user", text);
  const reply = addMessage("assistant", "");
  reply.element.classList.add("pending");
  reply.element.setAttribute("aria-busy", "true");
  if (input.value.trim() === text) input.value = "";
  autosize();
  scrollToEnd(true);
  turn = { controller: new AbortController(), id: null };
  const current = turn;
  updateControls(); // focus stays in the box, so the next message can be typed while this one streams
  let received = "";
  try {
    const pieces = api.streamTurn(text, turn.controller.signal, (id) => {
      current.id = id;
    });
    for (;;) {
      const { value, done } = await pieces.next();
      if (done) {
        if (value.stop_reason === "max_tokens") addNote(reply, "The reply reached its length limit.");
        break;
      }
      received += value;
      reply.element.classList.remove("pending");
      setContent(reply, received);
      scrollToEnd();
    }
  } catch (error) {
    if (error.name === "AbortError" && received.trim()) {
      addNote(reply, "Stopped."); // the server keeps what was shown, so the page does too
    } else {
      removeMessages(question, reply);
      restoreInput(text);
      if (error.name === "AbortError") {
        // Stopped before any reply: nothing was kept, the message is back in the box.
      } else if (error instanceof ChatError && error.code === "rate_limited") {
        startCooldown(error.retryAfter ?? 60, error.limit);
      } else {
        showNotice(explain(error), { retry: () => send(text) });
      }
    }
  } finally {
    reply.element.classList.remove("pending");
    reply.element.removeAttribute("aria-busy");
    turn = null;
    updateControls();
    if (document.activeElement === stopButton || document.activeElement === document.body) input.focus();
  }
}

/** Stops the reply on the server (see ChatApi.stop) and on the page. */
function stopTurn() {
  if (turn === null) return;
  if (turn.id) api.stop(turn.id);
  turn.controller.abort();
}

async function newChat() {
  stopTurn();
  clearNotice();
  resetting = true;
  updateControls();
  try {
    await api.reset();
    clearLog();
  } catch (error) {
    showNotice(`Could not start a new chat. ${explain(error)}`, { retry: newChat });
  } finally {
    resetting = false;
    updateControls();
    input.focus();
  }
}

async function restoreConversation() {
  log.setAttribute("aria-busy", "true");
  try {
    const page = await api.history();
    clearLog();
    for (const { role, content } of page.messages) addMessage(role, content);
    setOlder(page.before);
    scrollToEnd(true);
  } catch (error) {
    showNotice(`Could not load the conversation. ${explain(error)}`, { retry: restoreConversation });
  } finally {
    log.removeAttribute("aria-busy");
  }
}

function autosize() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (text && !sendButton.disabled) send(text);
});

input.addEventListener("keydown", (event) => {
  // Enter sends; Shift+Enter (and Enter while an IME composes) makes a new line.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});
input.addEventListener("input", autosize);
stopButton.addEventListener("click", stopTurn);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && turn !== null) stopTurn();
});
// Closing or leaving the page mid-reply stops it on the server too.
window.addEventListener("pagehide", stopTurn);
newChatButton.addEventListener("click", newChat);
earlierButton.addEventListener("click", loadEarlier);

api = new ChatApi(await loadEndpoints());
updateControls();
await restoreConversation();
document.body.dataset.ready = "true";
