// The chat page: many conversations, each streamed, addressable and restored on reload.
//
// The sidebar (sidebar.js) lists the caller's conversations; the URL's fragment names the open
// one (router.js), so reload, Back and Forward and links work. With no fragment the page opens
// on a new, empty chat: what people expect of a chat page, ready to type into, with the most
// recent conversation one click away in the list (and nothing shown that the person did not ask
// for, on a screen others may see). A new chat gets its id here and appears in the list, and in
// the URL, once the server keeps it.
//
// The log on the page always matches the conversation's history on the server: a turn that
// fails or is stopped before any reply is taken back off the page and its text put back in the
// box (the server kept nothing either); a turn stopped mid-reply keeps the partial reply, as the
// server does. Regenerate and edit-and-resend replace the last turn on the server
// (`replace_last`), and on the page: the old turn goes once the new one is kept, and comes back
// if the new one fails.
//
// When config.json names an issuer, the deployment requires sign-in: the page shows "Sign in"
// (auth.js) until someone is signed in, then who it is and "Sign out". A meter under the header
// shows what the caller has left today (GET /api/usage): money where the deployment budgets in
// money, else tokens.
//
// When the caller may choose among several models (GET /api/models), a picker by the composer
// offers them with their prices. The choice belongs to the conversation: a new chat starts on the
// default, a saved one opens on the model of its last turn (the server remembers it), and a choice
// made on the page is kept here until the next turn sends it. With one model there is no picker
// and turns name none.

import { ChatApi, ChatError, loadConfig } from "./api.js";
import { AttachmentTray, MAX_ATTACHMENTS, fileIcon, formatSize } from "./attachments.js";
import { StreamingMarkdown, citationMark, renderMarkdown, safeUrl } from "./markdown.js";
import { newConversationId, onRouteChange, pushNewChat, replaceWith, routedConversation } from "./router.js";
import { Sidebar } from "./sidebar.js";

const log = document.getElementById("log");
const emptyHint = document.getElementById("empty-hint");
const notice = document.getElementById("notice");
const form = document.getElementById("composer");
const input = document.getElementById("message");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const newChatButton = document.getElementById("new-chat");
const earlierButton = document.getElementById("earlier");
const signInButton = document.getElementById("sign-in");
const signOutButton = document.getElementById("sign-out");
const who = document.getElementById("who");
const usage = document.getElementById("usage");
const usageMeter = document.getElementById("usage-meter");
const usageText = document.getElementById("usage-text");
const heading = document.getElementById("conversation-title");
const editing = document.getElementById("editing");
const editCancel = document.getElementById("edit-cancel");
const editingText = document.getElementById("editing-text");
const modelPicker = document.getElementById("model-picker");
const modelSelect = document.getElementById("model");
const modelPrices = document.getElementById("model-prices");
const attachButton = document.getElementById("attach");
const fileInput = document.getElementById("file-input");
const attachList = document.getElementById("attachments");
const attachError = document.getElementById("attach-error");

// What was in the box when the person went to sign in, put back when they return (this tab only).
const DRAFT_KEY = "claude-chat.draft";
const EMPTY_HINT = emptyHint.textContent;
const PAGE_TITLE = document.title;

let api;
let sidebar;
let turn = null; // {controller, id} while a reply streams
let cooldownUntil = 0;
let cooldownTimer = null;
let older = null; // the cursor of the conversation's older page, or null when all of it is shown
let conversationVersion = 0;
let account = null; // auth.js's Account when the deployment requires sign-in
let usageTimer = null;
// The open conversation: `saved` once the server keeps it (it is then in the URL and the list);
// `model`, the model its next turn asks for (null: the default); `remembered`, the model of its last
// turn as the server has it.
let current = { id: newConversationId(), saved: false, title: null, model: null, remembered: null };
// The caller's models (GET /api/models): {list: [{id, default, prices}], fallback, currency, asOf},
// or null when the server offers no choice (no such route, or not reached).
let models = null;
// A model picked on the page for a conversation, until a turn of that conversation sends it (the
// server remembers it from then on): by conversation id.
const pickedModels = new Map();
let editDraft = null; // while editing the last message: what the box held before, else null
let tray = null; // the files to send with the next message (attachments.js)
let messageCount = 0; // makes ids unique to each message on the page (its sources' anchors)
const sentFiles = new WeakMap(); // a user message's element: the files it carried (for Regenerate)
// What a turn refused for one of its files says (the server does not say which one).
const ATTACHMENT_ERRORS = {
  unsupported_attachment:
    "One of the attached files is not a supported image or PDF by its content. Remove it and send again.",
  attachment_too_large: "One of the attached files is larger than its type allows. Remove it and send again.",
  not_found: "One of the attached files is no longer there (an upload is kept a day). Remove it and attach it again.",
};

/** Sign-in is required and nobody is signed in: nothing can be sent. */
function needsSignIn() {
  return account !== null && !account.signedIn;
}

function addMessage(role, text, extras = {}) {
  const message = createMessage(role, text, extras);
  log.append(message.element);
  emptyHint.hidden = true;
  return message;
}

/**
 * A message of the log. `extras` are a history message's other fields: a user message's
 * `attachments` ([{id, name, type, size, preview?}], `preview` an object URL of the file itself
 * while the page still has it), an assistant message's `thinking` and `citations`.
 */
function createMessage(role, text, { attachments = [], thinking = "", citations = [] } = {}) {
  const element = document.createElement("article");
  element.className = `message ${role}`;
  element.setAttribute("aria-label", role === "user" ? "You" : "Claude");
  const content = document.createElement("div");
  content.className = "content";
  const message = { element, content, role, key: `m${(messageCount += 1)}` };
  if (role === "user") {
    content.textContent = text; // shown as typed, never as markup
    if (Array.isArray(attachments) && attachments.length) element.append(filesOf(attachments));
    element.append(content);
    return message;
  }
  message.sources = new Sources(message.key);
  if (typeof thinking === "string" && thinking) {
    const section = thinkingSection(message);
    section.summary.textContent = "Thinking";
    section.body.textContent = thinking;
  }
  element.append(content);
  if (Array.isArray(citations) && citations.length) {
    // History keeps a reply's citations apart from its text: they are numbered after it.
    const marks = citations.map((cited) => message.sources.add(cited)).filter((n) => n !== null);
    const unique = [...new Set(marks)];
    content.replaceChildren(renderMarkdown(`${text}${unique.map(citationMark).join("")}`, { cite: message.sources.cite }));
    message.sources.attach(element);
  } else {
    content.replaceChildren(renderMarkdown(text));
  }
  return message;
}

/** The files a user message carried: images as thumbnails, PDFs as links that open them. */
function filesOf(attachments) {
  const list = document.createElement("ul");
  list.className = "message-files";
  list.setAttribute("aria-label", attachments.length === 1 ? "Attached file" : "Attached files");
  for (const file of attachments) {
    if (typeof file?.id !== "string") continue;
    const name = typeof file.name === "string" && file.name ? file.name : "file";
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.className = "message-file";
    link.href = "#";
    link.addEventListener("click", (event) => {
      event.preventDefault();
      openAttachment(file, link);
    });
    if (typeof file.type === "string" && file.type.startsWith("image/")) {
      const image = document.createElement("img");
      image.className = "message-thumb";
      image.alt = name; // never markup
      link.setAttribute("aria-label", `Open ${name}`);
      link.append(image);
      if (file.preview) image.src = file.preview;
      else {
        attachmentUrl(file)
          .then((url) => {
            image.src = url;
          })
          .catch(() => {
            image.replaceWith(`${name} (could not be loaded)`);
          });
      }
    } else {
      // Named by what it shows (WCAG 2.5.3): "Open", the name, the size.
      const verb = document.createElement("span");
      verb.className = "visually-hidden";
      verb.textContent = "Open ";
      const label = document.createElement("span");
      label.textContent = name;
      const size = document.createElement("span");
      size.className = "attachment-size";
      size.textContent = Number.isFinite(file.size) ? formatSize(file.size) : "";
      const comma = document.createElement("span");
      comma.className = "visually-hidden";
      comma.textContent = ", ";
      link.append(fileIcon(), verb, label, comma, size);
    }
    item.append(link);
    list.append(item);
  }
  return list;
}

// Object URLs of attachments fetched for this page, by id (fetched once, freed with the page).
const attachmentUrls = new Map();

/** An object URL of one of the caller's files, fetched with the call's credentials. */
function attachmentUrl(file) {
  if (file.preview) return Promise.resolve(file.preview);
  if (!attachmentUrls.has(file.id)) {
    const loading = api.attachment(file.id).then((blob) => {
      const typed = file.type && blob.type !== file.type ? new Blob([blob], { type: file.type }) : blob;
      return URL.createObjectURL(typed);
    });
    loading.catch(() => attachmentUrls.delete(file.id));
    attachmentUrls.set(file.id, loading);
  }
  return attachmentUrls.get(file.id);
}

/** Opens a file in a new tab: fetched first (a link could not carry the access token). */
async function openAttachment(file, link) {
  link.setAttribute("aria-busy", "true");
  try {
    const url = await attachmentUrl(file);
    window.open(url, "_blank");
  } catch (error) {
    showNotice(`Could not open ${file.name ?? "the file"}. ${explain(error)}`);
  } finally {
    link.removeAttribute("aria-busy");
  }
}

/** The collapsible thinking section of a reply, before its text: {details, summary, body}. */
function thinkingSection(message) {
  if (message.thinking) return message.thinking;
  const details = document.createElement("details");
  details.className = "thinking";
  const summary = document.createElement("summary");
  const body = document.createElement("div");
  body.className = "thinking-content"; // plain text (white-space: pre-wrap), never markup
  details.append(summary, body);
  message.element.prepend(details);
  message.thinking = { details, summary, body };
  return message.thinking;
}

/**
 * A reply's sources, numbered in the order they are first cited: the superscript links in its text
 * and the "Sources" list under it. Everything in a citation is untrusted text: only http(s)
 * addresses become links, and only through textContent and href.
 */
class Sources {
  constructor(key) {
    this.key = key;
    this.entries = []; // {n, url, label}
    this.byKey = new Map();
    this.list = null;
    this.section = null;
  }

  /** The number of a citation (a new one for a new source), or null for one that names nothing. */
  add(cited) {
    if (!isObject(cited)) return null;
    const url = typeof cited.url === "string" ? safeUrl(cited.url) : null;
    const title = typeof cited.title === "string" && cited.title.trim() ? cited.title.trim() : null;
    const document_ = typeof cited.document === "string" && cited.document.trim() ? cited.document.trim() : null;
    const page = Number.isInteger(cited.page) ? cited.page : null;
    let key;
    let label;
    if (url) {
      key = `u:${url}`;
      label = title ?? url;
    } else if (document_) {
      key = `d:${document_}:${page}`;
      label = page !== null ? `${document_}, page ${page}` : document_;
    } else {
      return null;
    }
    if (this.byKey.has(key)) return this.byKey.get(key).n;
    const entry = { n: this.entries.length + 1, url, label, quote: typeof cited.cited_text === "string" ? cited.cited_text : "" };
    this.entries.push(entry);
    this.byKey.set(key, entry);
    if (this.list) this.#append(entry);
    return entry.n;
  }

  /** The superscript link of source `n` (for the text's citation marks). */
  cite = (n) => {
    const entry = this.entries[n - 1];
    if (!entry) return null;
    const sup = document.createElement("sup");
    sup.className = "citation";
    const link = document.createElement("a");
    link.textContent = String(n);
    link.setAttribute("aria-label", `Source ${n}: ${entry.label}`);
    if (entry.url) {
      link.href = entry.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
    } else {
      // A page of a PDF: to its entry in the list (not by fragment, which names the conversation).
      link.href = "#";
      link.addEventListener("click", (event) => {
        event.preventDefault();
        const target = document.getElementById(`${this.key}-source-${n}`);
        target?.scrollIntoView({ block: "nearest" });
        target?.focus();
      });
    }
    sup.append(link);
    return sup;
  };

  /** The "Sources" list under the reply (once it has any). */
  attach(element) {
    if (this.section || !this.entries.length) return;
    this.section = document.createElement("section");
    this.section.className = "sources";
    const title = document.createElement("p");
    title.className = "sources-title";
    title.id = `${this.key}-sources`;
    title.textContent = "Sources";
    this.section.setAttribute("aria-labelledby", title.id);
    this.list = document.createElement("ol");
    this.section.append(title, this.list);
    for (const entry of this.entries) this.#append(entry);
    const actions = element.querySelector(".turn-actions");
    element.insertBefore(this.section, actions);
  }

  #append(entry) {
    const item = document.createElement("li");
    item.id = `${this.key}-source-${entry.n}`;
    item.tabIndex = -1;
    if (entry.url) {
      const link = document.createElement("a");
      link.href = entry.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.textContent = entry.label;
      item.append(link);
    } else {
      item.append(entry.label);
    }
    if (entry.quote) {
      const quote = document.createElement("q");
      quote.className = "cited-text";
      quote.textContent = entry.quote.length > 200 ? `${entry.quote.slice(0, 199)}…` : entry.quote;
      item.append(" ", quote);
    }
    this.list.append(item);
  }
}

function addNote(message, text) {
  const note = document.createElement("p");
  note.className = "note";
  note.textContent = text;
  message.element.append(note);
}

function removeMessages(...messages) {
  for (const message of messages) message.element.remove();
  emptyHint.hidden = log.querySelector(".message:not([hidden])") !== null;
}

function clearLog() {
  for (const message of log.querySelectorAll(".message")) message.remove();
  setOlder(null);
  emptyHint.textContent = needsSignIn() ? "Sign in to chat with Claude." : EMPTY_HINT;
  emptyHint.hidden = false;
}

/** The heading over the log and the tab's title: the conversation's title, or "New chat". */
function showTitle(title) {
  current.title = title;
  heading.textContent = title || "New chat"; // never markup
  document.title = title ? `${title} · ${PAGE_TITLE}` : PAGE_TITLE;
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
    const page = await api.conversation(current.id, older);
    if (version !== conversationVersion) return;
    // Older messages go above the ones shown, and what the reader was looking at stays put.
    const fromBottom = log.scrollHeight - log.scrollTop;
    const first = log.querySelector(".message");
    for (const message of page.messages) {
      const shown = createMessage(message.role, message.content, message);
      if (message.role === "user") sentFiles.set(shown.element, message.attachments ?? []);
      log.insertBefore(shown.element, first);
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

function showNotice(text, { retry = null, kind = "error", action = null } = {}) {
  notice.replaceChildren();
  notice.className = `notice ${kind}`;
  const message = document.createElement("span");
  message.textContent = text;
  notice.append(message);
  const button = action ?? (retry ? { label: "Retry", run: retry } : null);
  if (button) {
    const element = document.createElement("button");
    element.type = "button";
    element.textContent = button.label;
    element.addEventListener("click", () => {
      clearNotice();
      button.run();
    });
    notice.append(element);
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
  const signedOut = needsSignIn();
  sendButton.disabled = turn !== null || coolingDown || signedOut || (tray?.busy ?? false);
  attachButton.disabled = signedOut;
  newChatButton.disabled = signedOut;
  input.disabled = signedOut;
  sendButton.hidden = turn !== null;
  stopButton.hidden = turn === null;
  form.setAttribute("aria-busy", String(turn !== null));
  editing.hidden = editDraft === null;
  updateTurnActions();
}

/**
 * Regenerate under the last reply and Edit under the last message, while nothing streams: both
 * replace the conversation's last turn, so they are offered on that turn only.
 */
function updateTurnActions() {
  for (const actions of log.querySelectorAll(".turn-actions")) actions.remove();
  if (turn !== null || needsSignIn() || editDraft !== null) return;
  const shown = log.querySelectorAll(".message:not([hidden])");
  const [question, reply] = [shown[shown.length - 2], shown[shown.length - 1]];
  if (!question?.classList.contains("user") || !reply?.classList.contains("assistant")) return;
  const text = question.querySelector(".content").textContent;
  question.append(actionBar(["Edit", "Edit your last message", () => startEdit(text)]));
  const regenerate = () => send(text, { replaceLast: true, regenerate: true });
  reply.append(actionBar(["Regenerate", "Regenerate the last reply", regenerate]));
}

function actionBar(...actions) {
  const bar = document.createElement("div");
  bar.className = "turn-actions";
  for (const [label, name, run] of actions) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.setAttribute("aria-label", name);
    button.addEventListener("click", run);
    bar.append(button);
  }
  return bar;
}

/** Edit the last message: its text in the box; sending replaces the last turn. */
function startEdit(text) {
  if (turn !== null) return;
  const shown = log.querySelectorAll(".message.user:not([hidden])");
  const count = (sentFiles.get(shown[shown.length - 1]) ?? []).length;
  const files = count === 1 ? " Its file goes with it." : count > 1 ? ` Its ${count} files go with it.` : "";
  editingText.textContent = `Editing your last message: sending replaces it and its reply.${files}`;
  editDraft = input.value;
  input.value = text;
  autosize();
  updateControls();
  input.focus();
  input.setSelectionRange(text.length, text.length);
}

function endEdit({ restore = true } = {}) {
  if (editDraft === null) return;
  if (restore) input.value = editDraft;
  editDraft = null;
  autosize();
  updateControls();
}

/** The rate limit's refusal: a countdown from Retry-After, sending disabled until it ends. */
function startCooldown(seconds, limit) {
  const reason =
    limit === "tokens" || limit === "money"
      ? "You have used today's allowance of replies."
      : "You're sending messages too quickly.";
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
  if (error.code === "unauthorized") return "Your sign-in has expired. Sign in again to go on.";
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

/** The conversation is kept on the server from now on: it is in the URL and marked in the list. */
function markSaved(id) {
  if (current.id !== id || current.saved) return;
  current.saved = true;
  replaceWith(id);
  sidebar.setCurrent(id);
}

/** A first line of the message, as a title until the server's own arrives. */
function provisionalTitle(text) {
  const line = text.split("\n", 1)[0].trim();
  return line.length > 60 ? `${line.slice(0, 59)}…` : line;
}

/**
 * One turn: the message and its streamed reply. With `replaceLast`, it takes the place of the
 * last turn (regenerate, or an edited message): that turn is hidden while the new one streams,
 * removed once the server keeps the new one, and shown again if it does not.
 */
async function send(text, { replaceLast = false, regenerate = false } = {}) {
  if (turn !== null || Date.now() < cooldownUntil || needsSignIn()) return;
  clearNotice();
  const conversation = current.id;
  const replaced = replaceLast ? [...log.querySelectorAll(".message:not([hidden])")].slice(-2) : [];
  for (const element of replaced) element.hidden = true;
  if (editDraft !== null) endEdit({ restore: false });
  // A regenerated turn carries the files of the one it replaces; an edited one, those and the tray's;
  // a new one, the tray's.
  const keptFiles = replaceLast ? (sentFiles.get(replaced[0]) ?? []) : [];
  const files = regenerate ? keptFiles : [...keptFiles, ...tray.sent].slice(0, MAX_ATTACHMENTS);
  const taken = regenerate ? [] : tray.take();
  const question = addMessage("user", text, { attachments: files });
  sentFiles.set(question.element, files);
  const reply = addMessage("assistant", "");
  const searching = document.createElement("p");
  searching.className = "search-status";
  searching.setAttribute("role", "status");
  reply.element.insertBefore(searching, reply.content);
  reply.element.classList.add("pending");
  reply.element.setAttribute("aria-busy", "true");
  if (input.value.trim() === text) input.value = "";
  autosize();
  scrollToEnd(true);
  const model = currentModel(); // the picker's choice when the turn starts; a change applies to the next one
  turn = { controller: new AbortController(), id: null };
  const active = turn;
  updateControls(); // focus stays in the box, so the next message can be typed while this one streams
  const renderer = new StreamingMarkdown(reply.content, { cite: reply.sources.cite });
  let received = "";
  let pendingMarks = []; // the citation numbers of the passage streaming now, put after its end
  const flushMarks = () => {
    const marks = pendingMarks.map(citationMark).join("");
    pendingMarks = [];
    return marks;
  };
  let thought = ""; // the thinking so far
  let thinkingSince = null; // when it started, while it lasts
  const endThinking = () => {
    if (!reply.thinking || thinkingSince === null) return;
    const seconds = Math.max(1, Math.round((performance.now() - thinkingSince) / 1000));
    reply.thinking.summary.textContent = `Thought for ${seconds} s`;
    reply.thinking.details.open = false; // the reply is what matters now; the thinking stays a click away
    thinkingSince = null;
  };
  let kept = false; // the server keeps this turn: it finished, or was stopped with part of a reply
  try {
    const attachments = files.map((file) => file.id);
    const options = { conversation, replaceLast, model, attachments };
    const pieces = api.streamTurn(text, options, active.controller.signal, (id) => {
      active.id = id;
    });
    for (;;) {
      const { value, done } = await pieces.next();
      if (done) {
        // The server does not save a reply with no text (Claude ends a turn so at times): neither
        // does the page, or Regenerate would replace the turn before it, the server's last.
        if (!received.trim()) {
          throw new ChatError("Claude sent an empty reply. Please try again.", { code: "empty_reply" });
        }
        received += flushMarks();
        renderer.finish(received);
        kept = true;
        if (value.stop_reason === "max_tokens") addNote(reply, "The reply reached its length limit.");
        const id = value.conversation ?? conversation;
        markSaved(id);
        modelKept(id, model);
        if (typeof value.title === "string") {
          if (current.id === id) showTitle(value.title);
          const summary = { id, title: value.title, turns: value.turns, updated_at: new Date().toISOString() };
          sidebar.upsert(model ? { ...summary, model } : summary);
        }
        break;
      }
      if (value.thinking !== undefined) {
        const section = thinkingSection(reply);
        if (thinkingSince === null && !thought) {
          thinkingSince = performance.now();
          section.summary.textContent = "Thinking…";
          section.details.open = true;
        }
        thought += value.thinking;
        section.body.textContent = thought; // plain text, never markup
        scrollToEnd();
        continue;
      }
      if (value.search !== undefined) {
        endThinking();
        searching.textContent = `Searching the web for “${value.search}”…`;
        scrollToEnd();
        continue;
      }
      endThinking();
      searching.textContent = "";
      const piece = value.text.replace(/[\uE000\uE001]/g, ""); // the page's own citation marks
      const marks = [...new Set(value.citations.map((cited) => reply.sources.add(cited)).filter((n) => n !== null))];
      if (marks.length) {
        // A piece with citations begins the text they support: the marks of the passage before go
        // where it ends (the stream says no more), and this one's wait for its end.
        received += flushMarks();
        pendingMarks = marks;
        reply.sources.attach(reply.element);
        received += piece;
      } else {
        // A paragraph break ends the cited passage at the latest.
        const end = pendingMarks.length ? piece.indexOf("\n\n") : -1;
        received += end === -1 ? piece : `${piece.slice(0, end)}${flushMarks()}${piece.slice(end)}`;
      }
      reply.element.classList.remove("pending");
      renderer.update(received);
      scrollToEnd();
    }
  } catch (error) {
    received += received.trim() ? flushMarks() : "";
    renderer.finish(received);
    if (error.name === "AbortError" && received.trim()) {
      addNote(reply, "Stopped."); // the server keeps what was shown, so the page does too
      kept = true;
      markSaved(conversation);
      modelKept(conversation, model);
      afterStop(conversation, text);
    } else {
      removeMessages(question, reply);
      if (!regenerate) restoreInput(text); // a regenerated message was not typed: the box stays as it is
      tray.restore(taken); // and its files wait with it
      if (error.name === "AbortError") {
        // Stopped before any reply: nothing was kept, the message is back in the box.
      } else if (error instanceof ChatError && error.code === "rate_limited") {
        startCooldown(error.retryAfter ?? 60, error.limit);
      } else if (error instanceof ChatError && error.code === "model_not_allowed") {
        modelRefused(conversation, model, error, () => send(text, { replaceLast, regenerate }));
      } else if (error instanceof ChatError && ATTACHMENT_ERRORS[error.code] && files.length) {
        showNotice(ATTACHMENT_ERRORS[error.code]);
      } else if (error instanceof ChatError && error.code === "unauthorized" && account) {
        showNotice(explain(error), { action: { label: "Sign in", run: signIn } });
      } else {
        showNotice(explain(error), { retry: () => send(text, { replaceLast, regenerate }) });
      }
    }
  } finally {
    if (kept) for (const element of replaced) element.remove();
    else for (const element of replaced) element.hidden = false;
    emptyHint.hidden = log.querySelector(".message:not([hidden])") !== null;
    reply.element.classList.remove("pending");
    reply.element.removeAttribute("aria-busy");
    searching.remove();
    if (thinkingSince !== null) endThinking();
    if (reply.thinking && !thought) reply.thinking.details.remove();
    turn = null;
    updateControls();
    if (document.activeElement === stopButton || document.activeElement === document.body) input.focus();
    refreshUsage();
  }
}

/**
 * A reply stopped mid-way has no final event to carry the title: the list shows the message's
 * first line at once, then the server's summary once it has saved the partial reply.
 */
function afterStop(id, text) {
  if (!sidebar.titleOf(id)) {
    sidebar.upsert({ id, title: provisionalTitle(text), updated_at: new Date().toISOString() });
  }
  setTimeout(async () => {
    try {
      const { title, turns, updated_at: updatedAt } = await api.conversation(id);
      if (typeof title !== "string") return;
      sidebar.upsert({ id, title, turns, updated_at: updatedAt });
      if (current.id === id) showTitle(title);
    } catch {
      // Not saved after all (deleted meanwhile): the list catches up on its next load.
    }
  }, 600);
}

/** Stops the reply on the server (see ChatApi.stop) and on the page. */
function stopTurn() {
  if (turn === null) return;
  if (turn.id) api.stop(turn.id);
  turn.controller.abort();
}

/** Shows a new, empty chat with a fresh id (in the list and the URL once its first turn is kept). */
function startNewChat() {
  stopTurn();
  endEdit({ restore: false });
  clearNotice();
  current = { id: newConversationId(), saved: false, title: null, model: null, remembered: null };
  clearLog();
  showTitle(null);
  showModel();
  sidebar.setCurrent(null);
  updateControls();
}

function newChat() {
  pushNewChat(); // Back returns to the conversation that was open
  startNewChat();
  input.focus();
}

/** Opens a saved conversation: its newest page, older ones on demand. */
async function openConversation(id) {
  stopTurn();
  endEdit({ restore: false });
  clearNotice();
  const listed = sidebar.modelOf(id);
  current = { id, saved: true, title: null, model: pickedModels.get(id) ?? listed, remembered: listed };
  sidebar.setCurrent(id);
  clearLog();
  showTitle(sidebar.titleOf(id));
  showModel();
  updateControls();
  const version = conversationVersion;
  log.setAttribute("aria-busy", "true");
  try {
    const page = await api.conversation(id);
    if (version !== conversationVersion || current.id !== id) return;
    for (const message of page.messages) {
      const shown = addMessage(message.role, message.content, message);
      if (message.role === "user") sentFiles.set(shown.element, message.attachments ?? []);
    }
    setOlder(page.before);
    showTitle(page.title ?? null);
    const remembered = typeof page.model === "string" ? page.model : null;
    current.remembered = remembered;
    current.model = pickedModels.get(id) ?? remembered;
    showModel();
    updateControls();
    scrollToEnd(true);
  } catch (error) {
    if (version !== conversationVersion || current.id !== id) return;
    if (error instanceof ChatError && error.code === "not_found") {
      // Deleted, or not this person's (a link opens a conversation only for whoever had it).
      replaceWith(null);
      startNewChat();
      showNotice("That conversation was not found: it was deleted, or it belongs to someone else.", {
        kind: "info",
      });
    } else {
      showNotice(`Could not load the conversation. ${explain(error)}`, { retry: () => openConversation(id) });
    }
  } finally {
    if (current.id === id) log.removeAttribute("aria-busy");
  }
}

/** What the URL names: a conversation, or a new chat. */
async function followRoute(id) {
  if (id === null) startNewChat();
  else await openConversation(id);
}

/** The page offers a choice of model: the caller has more than one (with one, turns name none). */
function choosing() {
  return models !== null && models.list.length > 1;
}

function offered(id) {
  return models?.list.some((model) => model.id === id) ?? false;
}

/** The model the open conversation's next turn asks for (null: no choice, the server's default). */
function currentModel() {
  if (!choosing()) return null;
  return offered(current.model) ? current.model : models.fallback;
}

/** The caller's models and prices, into the picker; without an answer, no picker. */
async function loadModels({ fresh = false } = {}) {
  try {
    const answer = await api.models({ fresh });
    const list = (Array.isArray(answer?.models) ? answer.models : []).filter(
      (model) => typeof model?.id === "string" && model.id,
    );
    models = {
      list,
      fallback: (list.find((model) => model.default === true) ?? list[0])?.id ?? null,
      currency: typeof answer.currency === "string" ? answer.currency : "USD",
      asOf: typeof answer.prices_as_of === "string" ? answer.prices_as_of : null,
    };
  } catch {
    models = null; // a server without the route, or not reached: turns use the server's default
  }
  showModels();
}

function showModels() {
  modelPicker.hidden = !choosing();
  modelSelect.replaceChildren();
  if (!choosing()) return;
  for (const model of models.list) {
    const option = document.createElement("option");
    option.value = model.id;
    option.textContent = `${model.id}${priceLabel(model.prices)}`; // never markup
    modelSelect.append(option);
  }
  const asOf = models.asOf ? `, as of ${models.asOf}` : "";
  modelPrices.textContent = `Prices per million tokens: input / output${asOf}.`;
  showModel();
}

/** " — $1 / $5 per M tokens": input and output, whole dollars without cents. */
function priceLabel(prices) {
  if (!isObject(prices) || !Number.isFinite(prices.input) || !Number.isFinite(prices.output)) return "";
  const price = (usd) => moneyFormat(models.currency, Number.isInteger(usd) ? 0 : 2).format(usd);
  return ` — ${price(prices.input)} / ${price(prices.output)} per M tokens`;
}

/** The picker on the open conversation's model; a remembered model no longer offered is said once. */
function showModel() {
  if (!choosing()) return;
  modelSelect.value = currentModel();
  const { remembered } = current;
  if (remembered && !current.noted && !pickedModels.has(current.id) && !offered(remembered)) {
    current.noted = true;
    const next = currentModel();
    showNotice(`This conversation used ${remembered}, which is no longer available: its next reply uses ${next}.`, {
      kind: "info",
    });
  }
}

/** A turn of `id` with `model` is kept: the server remembers the model from now on. */
function modelKept(id, model) {
  if (!model) return;
  if (pickedModels.get(id) === model) pickedModels.delete(id);
  if (current.id === id) current.remembered = model;
}

/**
 * The server refused the turn's model (422 model_not_allowed: the operator took it away, say, while
 * the page still offered it). The conversation goes back to the default, from a fresh list of the
 * caller's models, and the message waits in the box to be sent again.
 */
async function modelRefused(conversation, refused, error, retry) {
  if (pickedModels.get(conversation) === refused) pickedModels.delete(conversation);
  if (current.id === conversation) current.noted = true; // this notice says it all
  if (current.id === conversation && current.model === refused) current.model = null;
  await loadModels({ fresh: true });
  if (current.id !== conversation) return;
  const now = currentModel();
  if (!refused || !now) {
    showNotice(explain(error), { retry });
    return;
  }
  showNotice(`${refused} is not available any more, so this chat is back on ${now}. Your message was not sent.`, {
    action: { label: `Retry with ${now}`, run: retry },
  });
}

/** "resets in 5 h 12 min": whole minutes, rounded up, so it never says 0 before the reset. */
function formatReset(seconds) {
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  const h = Math.floor(minutes / 60);
  return h ? `${h} h ${minutes % 60} min` : `${minutes} min`;
}

/**
 * The usage meter: what the caller has left today and when the day's budgets reset, from
 * GET /api/usage (free of charge). In money where the deployment budgets in money (the meter
 * on dollars), else in tokens; it says so when neither is limited. Hidden when there is nothing
 * to show: signed out, or a server without the route.
 */
async function refreshUsage() {
  if (needsSignIn()) {
    showUsage(null);
    return;
  }
  try {
    showUsage(await api.usage());
  } catch {
    showUsage(null);
  }
}

/** What the meter shows of an answer of GET /api/usage: {max, value, reset, describe}, or null. */
function dailyBudget(figures) {
  const { money, tokens } = figures;
  if (isObject(money) && Number.isFinite(money.limit) && money.limit > 0) {
    const remaining = Math.min(money.limit, Math.max(0, Number(money.remaining) || 0));
    const format = moneyFormat(money.currency, fractionDigits(money.limit));
    const digits = format.resolvedOptions().maximumFractionDigits;
    // Rounded down to what is shown: the meter never says more is left than there is.
    const shown = Math.floor(remaining * 10 ** digits + 1e-6) / 10 ** digits;
    const left = remaining > 0 && shown === 0 ? `Less than ${format.format(10 ** -digits)}` : format.format(shown);
    return {
      max: money.limit,
      value: remaining,
      reset: money.reset,
      describe: () => `${left} of ${format.format(money.limit)} left today`,
    };
  }
  if (isObject(tokens) && Number.isFinite(tokens.limit) && tokens.limit > 0) {
    const remaining = Math.max(0, Number(tokens.remaining) || 0);
    const count = new Intl.NumberFormat().format(remaining);
    return {
      max: Math.max(1, tokens.limit),
      value: Math.min(remaining, tokens.limit),
      reset: tokens.reset,
      describe: () => `${count} ${remaining === 1 ? "token" : "tokens"} left today`,
    };
  }
  return null;
}

function showUsage(figures) {
  clearInterval(usageTimer);
  usageTimer = null;
  if (!isObject(figures) || !(isObject(figures.tokens) || isObject(figures.money))) {
    usage.hidden = true;
    return;
  }
  const budget = dailyBudget(figures);
  if (budget === null) {
    usageMeter.hidden = true;
    usageText.textContent = "No daily limit";
    usage.hidden = false;
    return;
  }
  const resetsAt = Date.now() + Math.max(0, Number(budget.reset) || 0) * 1000;
  usageMeter.hidden = false;
  usageMeter.max = budget.max;
  usageMeter.value = budget.value;
  const render = () => {
    const left = Math.ceil((resetsAt - Date.now()) / 1000);
    if (left <= 0) {
      refreshUsage(); // a new day: a new budget
      return;
    }
    usageText.textContent = `${budget.describe()}, resets in ${formatReset(left)}`;
  };
  render();
  usageTimer = setInterval(render, 30_000);
  usage.hidden = false;
}

function isObject(value) {
  return typeof value === "object" && value !== null;
}

/** The fewest decimals, from 2 (cents) up to 6, that show `amount` exactly: $1.00, $0.005. */
function fractionDigits(amount) {
  let digits = 2;
  while (digits < 6 && Math.abs(Math.round(amount * 10 ** digits) - amount * 10 ** digits) > 1e-6) digits += 1;
  return digits;
}

/** Amounts of money in the page's language ("$1.25"); `digits` decimals. */
function moneyFormat(currency, digits) {
  const options = { minimumFractionDigits: digits, maximumFractionDigits: digits };
  try {
    return new Intl.NumberFormat(undefined, { ...options, style: "currency", currency: currency || "USD" });
  } catch {
    return new Intl.NumberFormat(undefined, { ...options, style: "currency", currency: "USD" }); // not a currency code
  }
}

/** The header's account corner: who is signed in and "Sign out", or "Sign in". */
function showAccount() {
  signInButton.hidden = account === null || account.signedIn;
  signOutButton.hidden = account === null || !account.signedIn;
  who.hidden = account === null || !account.signedIn;
  who.textContent = account?.signedIn ? `Signed in as ${account.displayName}` : "";
}

async function signIn() {
  if (input.value.trim()) sessionStorage.setItem(DRAFT_KEY, input.value);
  signInButton.disabled = true;
  try {
    await account.signIn(); // the page goes to the provider's sign-in page from here
  } catch {
    signInButton.disabled = false;
    showNotice("Could not reach the sign-in service. Check your connection and try again.", {
      retry: signIn,
    });
  }
}

async function signOut() {
  stopTurn();
  api.forgetSession();
  signOutButton.disabled = true;
  await account.signOut(); // to the provider's sign-out, which sends the person back here
  signOutButton.disabled = false;
}

/** Someone signed out, or their sign-in ended (a refused token, a failed renewal). */
function accountChanged() {
  showAccount();
  if (needsSignIn()) {
    stopTurn();
    endEdit({ restore: false });
    clearLog();
    showTitle(null);
    sidebar?.clear();
    showUsage(null);
    models = null; // someone else's choices
    pickedModels.clear();
    tray?.clear(); // and their files
    tray?.clearErrors();
    showModels();
  }
  updateControls();
}

function autosize() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (text && !sendButton.disabled) send(text, { replaceLast: editDraft !== null });
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
  if (event.key !== "Escape" || document.querySelector("dialog[open]") || sidebar.isOpen) return;
  if (turn !== null) stopTurn();
  else if (editDraft !== null && event.target === input) endEdit();
});
editCancel.addEventListener("click", () => {
  endEdit();
  input.focus();
});
// Closing or leaving the page mid-reply stops it on the server too.
window.addEventListener("pagehide", stopTurn);
newChatButton.addEventListener("click", newChat);
modelSelect.addEventListener("change", () => {
  // For this conversation's next turn (one streaming now keeps the model it started with).
  current.model = modelSelect.value;
  pickedModels.set(current.id, modelSelect.value);
});
earlierButton.addEventListener("click", loadEarlier);

// Files: the Attach button's picker, a paste into the box, or a drop anywhere on the chat column.
attachButton.addEventListener("click", () => fileInput.click());
fileInput.addEventListener("change", () => {
  addFiles(fileInput.files);
  fileInput.value = ""; // the same file may be picked again
});
input.addEventListener("paste", (event) => {
  const files = event.clipboardData?.files;
  if (!files?.length) return; // text pastes as usual
  event.preventDefault();
  addFiles(files);
});
const dropZone = form.closest(".chat");
const carriesFiles = (event) => event.dataTransfer?.types?.includes("Files");
dropZone.addEventListener("dragover", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = needsSignIn() ? "none" : "copy";
  dropZone.classList.add("dropping");
});
dropZone.addEventListener("dragleave", (event) => {
  if (!dropZone.contains(event.relatedTarget)) dropZone.classList.remove("dropping");
});
dropZone.addEventListener("drop", (event) => {
  dropZone.classList.remove("dropping");
  if (!carriesFiles(event)) return;
  event.preventDefault();
  addFiles(event.dataTransfer.files);
});

function addFiles(files) {
  if (needsSignIn() || !tray) return;
  tray.clearErrors();
  tray.add([...files]);
}
signInButton.addEventListener("click", signIn);
signOutButton.addEventListener("click", signOut);

const { endpoints, signIn: signInConfig } = await loadConfig();
if (signInConfig) {
  // Only a deployment that requires sign-in loads the OpenID client.
  const { Account } = await import("./auth.js");
  account = new Account(signInConfig);
  let problem;
  try {
    problem = await account.start();
  } catch {
    problem = "Could not reach the sign-in service. Reload the page to try again.";
  }
  account.onChange(accountChanged);
  if (problem) showNotice(problem);
  const draft = sessionStorage.getItem(DRAFT_KEY);
  sessionStorage.removeItem(DRAFT_KEY);
  if (draft && account.signedIn) restoreInput(draft);
}
// Signed in, the session token lives and dies with the tab, like the access token.
api = new ChatApi(endpoints, account ? window.sessionStorage : window.localStorage, account);
tray = new AttachmentTray({ api, list: attachList, errors: attachError, onChange: updateControls });
sidebar = new Sidebar({
  api,
  explain,
  onDeleted: (id) => {
    if (id !== current.id) return;
    replaceWith(null);
    startNewChat();
    input.focus();
  },
  onRenamed: ({ id, title }) => {
    if (id === current.id) showTitle(title);
  },
  onNavigate: () => {
    // On a phone the drawer closes over the conversation: focus goes to the box to write in.
    if (!sidebar.isOpen) return;
    sidebar.closeDrawer({ focusToggle: false });
    input.focus();
  },
});
onRouteChange(followRoute, () => (current.saved ? current.id : null));
showAccount();
clearLog();
updateControls();
if (!needsSignIn()) await Promise.all([sidebar.load(), followRoute(routedConversation()), loadModels()]);
if (account?.signedIn) input.focus();
refreshUsage();
document.body.dataset.ready = "true";
