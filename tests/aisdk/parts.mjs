// The Vercel AI SDK's own client (AbstractChat + DefaultChatTransport of one installed `ai` version)
// sends one message to POST /api/chat/ui and prints the parts of the reply it built, and any error:
//
//   node tests/aisdk/parts.mjs --package ai-v5-0 --base http://127.0.0.1:3000 --text "..."
//
// tests/integration/test_thinking_search.py judges the reasoning and source parts it prints.

import { parseArgs } from "node:util";

import { loadClient } from "./client.mjs";

const { values: args } = parseArgs({
  options: { package: { type: "string" }, base: { type: "string" }, text: { type: "string" } },
});
const { Chat, DefaultChatTransport } = await loadClient(args.package);

const chat = new Chat({
  id: `parts-${process.pid}`,
  transport: new DefaultChatTransport({ api: `${args.base}/api/chat/ui` }),
});
await chat.sendMessage({ text: args.text });
const message = chat.messages.at(-1);
// Without what differs between versions and is ours to choose (part ids) or the provider's (metadata).
const parts = (message?.parts ?? []).map(({ providerMetadata, id, ...part }) => part);
console.log(JSON.stringify({ status: chat.status, error: chat.error?.message ?? null, parts }));
