// The Vercel AI SDK's own client against `make dev`'s POST /api/chat/ui: `AbstractChat` (the class
// React's useChat, Vue's and Svelte's wrap) with `DefaultChatTransport`, unchanged, from one installed
// major version of `ai` (the npm aliases ai-v5-0, ai-v5, ai-v6, ai-v7 in package.json).
//
//   node tests/aisdk/chat.mjs --package ai-v7 --base http://127.0.0.1:3000 --addresses 127.0.9.1,...
//
// Prints one JSON object: what the client saw in each scenario (a two-turn conversation and a
// regenerate; errors during and before the stream; a 429; Stop), and the raw stream read by the
// package's own chunk parser. tests/integration/test_ai_sdk.py runs it and judges the output.
//
// Each scenario's requests leave from a loopback address of their own (the transport's `fetch`
// option, over node:http), so each has its own rate-limit budget on the one server.

import { parseArgs } from "node:util";

import { fetchFrom, loadClient, textOf } from "./client.mjs";

const { values: args } = parseArgs({
  options: {
    package: { type: "string" },
    base: { type: "string" },
    addresses: { type: "string" },
  },
});
const { Chat, DefaultChatTransport, version } = await loadClient(args.package);
const [replyAddress, errorAddress, limitAddress, stopAddress, parserAddress, filesAddress] =
  args.addresses.split(",");
const API = `${args.base}/api/chat/ui`;

let chats = 0;
/** A chat with its own id, keeping the session the server hands out (as a page would keep it). */
function newChat(address, id = `aisdk-${process.pid}-${++chats}`) {
  const fetch = fetchFrom(address);
  const kept = { session: undefined };
  // The session arrives on `start`, in the reply's metadata: kept from there (as the README's page does),
  // a stopped reply's counts too (no `finish` came, and 5.0.0 calls no onFinish then).
  const session = () =>
    (kept.session = chat.messages.findLast((m) => m.metadata?.session)?.metadata.session ?? kept.session);
  const chat = new Chat({
    id,
    transport: new DefaultChatTransport({
      api: API,
      fetch,
      headers: () => (session() ? { "X-Session-Id": kept.session } : {}),
    }),
  });
  return { chat, fetch, kept };
}

const last = (chat) => chat.messages.at(-1);

/** What a scenario reports about the chat after a send. */
function seen(chat, fetch) {
  const message = last(chat);
  return {
    status: chat.status,
    error: chat.error?.message ?? null,
    role: message?.role ?? null,
    text: textOf(message),
    metadata: message?.metadata ?? null,
    response: fetch.log.at(-1) ?? null,
  };
}

// --------------------------------------------------------------------------------------- scenarios

async function reply() {
  const { chat, fetch } = newChat(replyAddress);
  await chat.sendMessage({ text: "Hello from the AI SDK" });
  const first = seen(chat, fetch);
  await chat.sendMessage({ text: "And again" });
  const second = seen(chat, fetch);
  await chat.regenerate();
  const regenerated = seen(chat, fetch);
  return { id: chat.id, first, second, regenerated, messages: chat.messages.map((m) => [m.role, textOf(m)]) };
}

async function errors() {
  const during = newChat(errorAddress);
  await during.chat.sendMessage({ text: "[standin:fail_after=2] Fail midway please" });
  const before = newChat(errorAddress);
  await before.chat.sendMessage({ text: "[standin:status=400] Refuse me" });
  const badId = newChat(errorAddress, "not a chat id!");
  await badId.chat.sendMessage({ text: "Hello" });
  return {
    during: seen(during.chat, during.fetch),
    before: seen(before.chat, before.fetch),
    bad_id: seen(badId.chat, badId.fetch),
  };
}

async function rateLimited() {
  const { chat, fetch } = newChat(limitAddress);
  const statuses = [];
  for (let n = 1; n <= 6; n++) {
    await chat.sendMessage({ text: `Message ${n}` });
    statuses.push(fetch.log.at(-1)?.status ?? null);
  }
  return { statuses, last: seen(chat, fetch) };
}

async function stop() {
  const { chat, fetch } = newChat(stopAddress);
  const sending = chat.sendMessage({ text: "[standin:delta_delay=0.2] [standin:words=40] Stop me" });
  const started = Date.now();
  // Stop once a few words are on screen, as a person pressing Stop would.
  while (!(last(chat)?.role === "assistant" && textOf(last(chat)).split(" ").length >= 5)) {
    if (Date.now() - started > 15_000) throw new Error(`no reply to stop: ${JSON.stringify(chat.messages)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await chat.stop();
  await sending;
  const after = seen(chat, fetch);
  // What the server kept, read back with the session the `start` chunk carried (no `finish` came).
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const session = after.metadata?.session;
  const saved = await fetchFrom(stopAddress)(`${args.base}/api/conversations/${chat.id}`, {
    headers: session ? { "X-Session-Id": session } : {},
  });
  const savedBody = await saved.json();
  // The next turn, with the session the page kept: the same conversation, the stopped turn in it.
  await chat.sendMessage({ text: "After the stop" });
  return { ...after, saved_status: saved.status, saved: savedBody, next: seen(chat, fetch) };
}

// A 1x1 PNG, whole (its header's checksum and its end chunk): the server checks a file by its bytes.
const DOT_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

async function files() {
  const { chat, fetch } = newChat(filesAddress);
  const dot = { type: "file", mediaType: "image/png", filename: "dot.png", url: `data:image/png;base64,${DOT_PNG}` };
  await chat.sendMessage({ text: "What is in this picture?", files: [dot] });
  const sent = seen(chat, fetch);
  const remote = newChat(filesAddress);
  const link = { type: "file", mediaType: "image/png", filename: "x.png", url: "http://169.254.169.254/latest/x.png" };
  await remote.chat.sendMessage({ text: "Fetch this", files: [link] });
  return { id: chat.id, sent, remote: { id: remote.chat.id, ...seen(remote.chat, remote.fetch) } };
}

async function parse(text) {
  // The raw response through the transport's own parser (SSE, JSON, and this version's chunk schema:
  // 5.0.0's is strict, so a field it does not know fails there), chunk by chunk.
  const fetch = fetchFrom(parserAddress);
  const response = await fetch(API, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      id: `aisdk-${process.pid}-raw-${++chats}`,
      messages: [{ id: "u1", role: "user", parts: [{ type: "text", text }] }],
      trigger: "submit-message",
    }),
  });
  const chunks = [];
  let error = null;
  try {
    const reader = new DefaultChatTransport().processResponseStream(response.body).getReader();
    for (let read = await reader.read(); !read.done; read = await reader.read()) chunks.push(read.value);
  } catch (failure) {
    error = String(failure);
  }
  return { status: response.status, headers: fetch.log.at(-1).headers, chunks, error };
}

async function parser() {
  return { reply: await parse("Parse me"), error: await parse("[standin:fail_after=2] Parse my error") };
}

const result = { version };
for (const [name, scenario] of Object.entries({ reply, errors, rate_limited: rateLimited, stop, parser, files })) {
  try {
    result[name] = await scenario();
  } catch (error) {
    result[name] = { failed: String(error?.stack ?? error) };
  }
}
process.stdout.write(`${JSON.stringify(result, null, 1)}\n`);
