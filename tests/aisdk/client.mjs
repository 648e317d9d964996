// What the scripts in tests/aisdk share: the AI SDK's own chat client (`AbstractChat`, the class
// React's useChat, Vue's and Svelte's wrap) of one installed `ai` version, on the minimal state the
// SDK's docs describe for a framework-free chat, and a fetch over node:http that can leave from a
// loopback address of its own and logs each response.

import http from "node:http";
import { Readable } from "node:stream";

/** `ai` of one installed version (an npm alias in package.json: ai-v5-0, ai-v5, ai-v6, ai-v7). */
export async function loadClient(packageName) {
  const ai = await import(packageName);
  const { AbstractChat, DefaultChatTransport } = ai;

  /** The minimal ChatState the SDK's docs describe for a framework-free chat. */
  class PlainState {
    status = "ready";
    error = undefined;
    messages = [];
    pushMessage = (message) => {
      this.messages = [...this.messages, message];
    };
    popMessage = () => {
      this.messages = this.messages.slice(0, -1);
    };
    replaceMessage = (index, message) => {
      this.messages = [...this.messages.slice(0, index), message, ...this.messages.slice(index + 1)];
    };
    snapshot = (thing) => structuredClone(thing);
  }

  class Chat extends AbstractChat {
    constructor(init) {
      super({ ...init, state: new PlainState() });
    }
  }

  const version = (await import(`${packageName}/package.json`, { with: { type: "json" } })).default.version;
  return { ai, Chat, DefaultChatTransport, version };
}

const LOGGED_HEADERS = /^(content-type|x-vercel-ai-ui-message-stream|x-turn-id|x-session-id|ratelimit.*|retry-after)$/;

/** A WHATWG fetch whose connections leave from `localAddress` (any, when not given); it logs each
 * response's status and the headers a test judges in `fetch.log`. */
export function fetchFrom(localAddress, log = []) {
  const fetchFn = (url, init = {}) =>
    new Promise((resolve, reject) => {
      const signal = init.signal;
      const aborted = () => new DOMException("The operation was aborted.", "AbortError");
      if (signal?.aborted) return reject(aborted());
      const headers = new Headers(init.headers);
      const request = http.request(url, {
        method: init.method ?? "GET",
        headers: Object.fromEntries(headers.entries()),
        ...(localAddress && { localAddress }),
      });
      let response;
      signal?.addEventListener("abort", () => {
        const error = aborted();
        request.destroy(error);
        response?.destroy(error);
        reject(error);
      });
      request.on("error", reject);
      request.on("response", (res) => {
        response = res;
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          for (const one of [value].flat()) responseHeaders.append(name, one);
        }
        const kept = [...responseHeaders.entries()].filter(([name]) => LOGGED_HEADERS.test(name));
        log.push({ status: res.statusCode, headers: Object.fromEntries(kept) });
        const nullBody = res.statusCode === 204 || res.statusCode === 304;
        resolve(
          new Response(nullBody ? null : Readable.toWeb(res), { status: res.statusCode, headers: responseHeaders }),
        );
      });
      request.end(init.body ?? undefined);
    });
  fetchFn.log = log;
  return fetchFn;
}

/** A message's text parts, joined. */
export const textOf = (message) =>
  (message?.parts ?? [])
    .filter((part) => part.type === "text")
    .map((part) => part.text)
    .join("");
