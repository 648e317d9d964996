// The chat API as the page uses it: three function URLs, one session token, typed errors, and the
// access token on every call when the deployment requires sign-in. A caller has many conversations,
// each named by an id the page makes (see router.js).

import { serverSentEvents } from "./sse.js";

const SESSION_KEY = "claude-chat.session";

/** A refused or failed request, with what the page needs to explain it. */
export class ChatError extends Error {
  constructor(message, { status = 0, code = "network", retryAfter = null, limit = null } = {}) {
    super(message);
    this.name = "ChatError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter; // seconds, when the server said how long to wait
    this.limit = limit; // for a 429: "requests" (per minute or so), "tokens" or "money" (per day)
  }
}

/**
 * Where each function answers, and where to sign in. `config.json` (written by
 * `make web-config` from the stack's outputs) names the three function URLs; a
 * field that is missing or empty means the page's own origin, which is how
 * `make dev` serves everything. With `issuer` and `clientId` the deployment
 * requires sign-in (`signIn` is then {issuer, clientId, scope, logoutUrl}; else
 * null). `logoutUrl` is for a provider whose discovery document names no
 * end-session endpoint: Cognito's hosted UI `/logout`.
 */
export async function loadConfig(configUrl = "config.json") {
  let config = {};
  try {
    const response = await fetch(configUrl, { cache: "no-store" });
    if (response.ok) config = await response.json();
  } catch {
    // No config file: every route is on this page's origin.
  }
  const base = (url) => (typeof url === "string" ? url.trim().replace(/\/+$/, "") : "");
  const text = (value) => (typeof value === "string" ? value.trim() : "");
  const endpoints = { chat: base(config.chatUrl), history: base(config.historyUrl), stream: base(config.streamUrl) };
  const issuer = text(config.issuer); // kept as written: a token's `iss` must equal it, slash and all
  const clientId = text(config.clientId);
  const signIn =
    issuer && clientId ? { issuer, clientId, scope: text(config.scope), logoutUrl: text(config.logoutUrl) } : null;
  return { endpoints, signIn };
}

export class ChatApi {
  /**
   * @param endpoints the three function URLs (see loadConfig)
   * @param storage where the session token lives
   * @param account when sign-in is on: {accessToken(), renew(), expired()} (auth.js's Account)
   */
  constructor(endpoints, storage = window.localStorage, account = null) {
    this.endpoints = endpoints;
    this.storage = storage;
    this.account = account;
  }

  get session() {
    return this.storage.getItem(SESSION_KEY);
  }

  /** Drops the session token (on sign-out: it named the signed-in person's conversation). */
  forgetSession() {
    this.storage.removeItem(SESSION_KEY);
  }

  /**
   * A page of the caller's conversations, newest first: {conversations: [{id, title, turns,
   * updated_at, model}...], next}. `next` is the cursor of the page after it (null at the end).
   */
  async conversations(before = null, limit = null) {
    const query = new URLSearchParams();
    if (before) query.set("before", before);
    if (limit) query.set("limit", String(limit));
    const suffix = query.size ? `?${query}` : "";
    const response = await this.#request(`${this.endpoints.history}/api/conversations${suffix}`, "GET");
    const { conversations = [], next = null } = await response.json();
    return { conversations, next };
  }

  /**
   * One conversation and a page of its messages: {id, title, turns, updated_at, model (of its last
   * turn, or null), messages: [{role, content}...] oldest first, before}. Without `before`, the newest page; with the
   * `before` of a page, the one older than it (null in the answer when nothing older is left).
   * A conversation that does not exist (or is someone else's) throws a 404 `not_found`.
   */
  async conversation(id, before = null) {
    const suffix = before ? `?${new URLSearchParams({ before })}` : "";
    const response = await this.#request(`${this.#conversationUrl(id)}${suffix}`, "GET");
    const body = await response.json();
    return { ...body, messages: body.messages ?? [], before: body.before ?? null };
  }

  /** Renames a conversation; answers its summary {id, title, turns, updated_at}. */
  async renameConversation(id, title) {
    const response = await this.#request(this.#conversationUrl(id), "PATCH", {
      body: JSON.stringify({ title }),
    });
    return response.json();
  }

  /** Deletes a conversation for good (a reply still streaming into it is not saved afterwards). */
  async deleteConversation(id) {
    await this.#request(this.#conversationUrl(id), "DELETE");
  }

  /**
   * A conversation as a file: {blob, filename}, `format` "markdown" or "json". Fetched here rather
   * than linked to, so the call carries the access token and the session like every other one.
   */
  async exportConversation(id, format) {
    const query = new URLSearchParams({ format });
    const response = await this.#request(`${this.#conversationUrl(id)}/export?${query}`, "GET");
    const blob = await response.blob();
    const filename = filenameOf(response.headers.get("Content-Disposition"));
    return { blob, filename };
  }

  /**
   * The caller's budgets, free of charge: {requests: {limit, remaining, reset},
   * tokens: {limit, used, remaining, reset}, money: {limit, spent, remaining, reset,
   * currency}}, `reset` in seconds, `tokens.limit` and `money.limit` null when that daily
   * budget is off (and no `money` at all from a server older than budgets in money).
   */
  async usage() {
    const response = await this.#request(`${this.endpoints.history}/api/usage`, "GET");
    return response.json();
  }

  /**
   * The models the caller may choose, free of charge: {models: [{id, default, prices: {input,
   * output, ...}}...], prices_as_of, currency}, the default first, prices per million tokens.
   * The server lets browsers keep the answer a few minutes: `fresh` asks it again (after a turn
   * was refused a model that the kept answer still offered).
   */
  async models({ fresh = false } = {}) {
    const response = await this.#request(`${this.endpoints.history}/api/models`, "GET", {
      cache: fresh ? "no-cache" : "default",
    });
    return response.json();
  }

  /**
   * One turn of a conversation, streamed. Yields the reply's pieces as they arrive: {thinking},
   * {search} (the query of a web search starting) and {text, citations}, and returns the final event (stop_reason, usage, turns, conversation,
   * title). With `replaceLast`, the turn takes the place of the conversation's
   * last one (regenerate, or edit and resend); with `model`, Claude answers with that
   * model (one of models()'s ids; left out, the server's default). Throws a ChatError for a refusal
   * or for an error event in the stream; aborting `signal` ends it with the
   * browser's AbortError. `onTurn` receives the turn's id (X-Turn-Id) as soon as
   * the reply starts: `stop(id)` needs it.
   */
  async *streamTurn(
    message,
    { conversation, replaceLast = false, model = null, attachments = [] },
    signal,
    onTurn = () => {},
  ) {
    const body = { message, conversation };
    if (replaceLast) body.replace_last = true;
    if (model) body.model = model;
    if (attachments.length) body.attachments = attachments;
    const response = await this.#request(`${this.endpoints.stream}/api/chat/history/stream`, "POST", {
      body: JSON.stringify(body),
      signal,
    });
    const turnId = response.headers.get("X-Turn-Id");
    if (turnId) onTurn(turnId);
    for await (const data of serverSentEvents(response.body)) {
      if (data === "[DONE]") break;
      const event = JSON.parse(data);
      if (event.error) throw new ChatError(event.error, { status: 200, code: event.code ?? "upstream_error" });
      if (event.session) this.#remember(event.session);
      if (event.done) return event;
      if (typeof event.thinking === "string" && event.thinking) yield { thinking: event.thinking };
      if (event.search && typeof event.search.query === "string") yield { search: event.search.query };
      const citations = Array.isArray(event.citations) ? event.citations : [];
      if (event.text || citations.length) yield { text: String(event.text ?? ""), citations };
    }
    throw new ChatError("The reply was cut off before it finished.", { code: "incomplete" });
  }

  /**
   * Asks for an upload of one file, {name, type, size}: answers {id, upload: {url, fields},
   * expires_in}, a presigned form POST straight to the object store. Refusals are ChatErrors
   * (413 attachment_too_large, 415 unsupported_attachment, 429 rate_limited).
   */
  async createAttachment({ name, type, size }) {
    const response = await this.#request(`${this.endpoints.chat}/api/attachments`, "POST", {
      body: JSON.stringify({ name, type, size }),
    });
    return response.json();
  }

  /**
   * Uploads `file` with the presigned form of createAttachment: its fields, then the file last
   * (the object store ignores anything after it). XMLHttpRequest, for progress events: `onProgress`
   * gets the fraction sent (0 to 1). Resolves when the store has it; `signal` aborts it.
   */
  upload(upload, file, { onProgress = () => {}, signal } = {}) {
    return new Promise((resolve, reject) => {
      const form = new FormData();
      for (const [name, value] of Object.entries(upload.fields ?? {})) form.append(name, value);
      form.append("file", file);
      const request = new XMLHttpRequest();
      request.open("POST", upload.url);
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
      });
      request.addEventListener("load", () => {
        if (request.status >= 200 && request.status < 300) {
          onProgress(1);
          resolve();
        } else if (request.status === 400 && /EntityTooLarge/.test(request.responseText)) {
          reject(new ChatError("The file is larger than its type allows.", { status: 413, code: "attachment_too_large" }));
        } else {
          reject(new ChatError(`The upload failed (${request.status}).`, { status: request.status, code: "upload_failed" }));
        }
      });
      request.addEventListener("error", () => reject(new ChatError("The upload could not reach the file store.")));
      request.addEventListener("abort", () => reject(new DOMException("The upload was cancelled.", "AbortError")));
      signal?.addEventListener("abort", () => request.abort(), { once: true });
      request.send(form);
    });
  }

  /**
   * One of the caller's attachments as a Blob. GET /api/attachments/<id> with `Accept:
   * application/json` answers a short-lived link to the object store (the call carries the access
   * token, which an <img src> or a plain link could not), then the file is fetched from there. Not
   * the redirect: followed by fetch() from a page on another origin than the history function, it
   * would reach the store as origin `null`, which its CORS rules refuse.
   */
  async attachment(id) {
    const url = `${this.endpoints.history}/api/attachments/${encodeURIComponent(id)}`;
    const response = await this.#request(url, "GET", { accept: "application/json" });
    const { url: link } = await response.json();
    let file;
    try {
      file = await fetch(link, { cache: "no-store" });
    } catch {
      throw new ChatError("Could not reach the file store. Check your connection.");
    }
    if (!file.ok) throw new ChatError(`The file store answered ${file.status}.`, { status: file.status, code: "http_error" });
    return file.blob();
  }

  /**
   * Tells the server to stop a streaming reply. In AWS the streaming function
   * is not told when the page stops reading, so without this Claude would go
   * on (and bill) to the end of the reply. Sent as a beacon where it can be
   * (it survives the page closing), else as a keepalive fetch; a text/plain
   * body needs no CORS preflight.
   */
  stop(turnId) {
    const url = `${this.endpoints.stream}/api/chat/stop`;
    const body = JSON.stringify({ turn: turnId });
    const token = this.account?.user?.access_token;
    if (token) {
      // A beacon cannot carry the Authorization header that a signed-in deployment requires.
      const headers = { "Content-Type": "text/plain", Authorization: `Bearer ${token}` };
      fetch(url, { method: "POST", body, headers, keepalive: true }).catch(() => {});
      return;
    }
    if (navigator.sendBeacon?.(url, body)) return;
    fetch(url, { method: "POST", body, keepalive: true }).catch(() => {});
  }

  /**
   * One call, with the access token when signed in. A 401 gets one renewal of the token and one
   * more try (the server changed nothing); a second 401 ends the sign-in on this page.
   */
  async #request(url, method, { body, signal, cache = "default", accept = null } = {}, renewed = false) {
    const headers = {};
    if (accept) headers.Accept = accept;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.session) headers["X-Session-Id"] = this.session;
    const accessToken = await this.account?.accessToken();
    if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
    let response;
    try {
      response = await fetch(url, { method, headers, body, signal, cache });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ChatError("Could not reach the chat service. Check your connection.");
    }
    if (response.status === 401 && this.account) {
      if (!renewed && accessToken && (await this.account.renew())) {
        return this.#request(url, method, { body, signal, cache, accept }, true);
      }
      const error = await errorOf(response);
      await this.account.expired();
      throw error;
    }
    const token = response.headers.get("X-Session-Id");
    if (token) this.#remember(token);
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  #conversationUrl(id) {
    return `${this.endpoints.history}/api/conversations/${encodeURIComponent(id)}`;
  }

  #remember(token) {
    if (token !== this.session) this.storage.setItem(SESSION_KEY, token);
  }
}

/** The file name a Content-Disposition header gives (RFC 6266: `filename*` first), or null. */
export function filenameOf(header) {
  if (!header) return null;
  const extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
  if (extended) {
    try {
      return decodeURIComponent(extended[1].trim());
    } catch {
      // A malformed escape: fall back to the plain parameter.
    }
  }
  const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))/i.exec(header);
  if (!plain) return null;
  return (plain[1] ?? plain[2]).replace(/\\(.)/g, "$1").trim() || null;
}

async function errorOf(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not the contract's JSON (a proxy's page, say): describe it by its status.
  }
  const header = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  const retryAfter = Number.isFinite(body.retryAfter) ? body.retryAfter : Number.isFinite(header) ? header : null;
  const message = typeof body.error === "string" ? body.error : `The chat service answered ${response.status}.`;
  const limit = typeof body.limit === "string" ? body.limit : null;
  return new ChatError(message, { status: response.status, code: body.code ?? "http_error", retryAfter, limit });
}
