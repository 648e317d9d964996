// A useChat page for this backend: the ten lines a Next.js or Vite app needs are marked (1) to (10).
import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport } from "ai";
import { useRef, useState } from "react";

// The stream function's URL + /api/chat/ui (here from ?api=..., so a test can point it anywhere).
const API = new URLSearchParams(location.search).get("api") ?? "http://127.0.0.1:3000/api/chat/ui";
const STOP = API.replace(/\/api\/chat\/ui$/, "/api/chat/stop");

const textOf = (message) =>
  message.parts
    .filter((part) => part.type === "text")
    .map((part) => part.text)
    .join("");

export function App() {
  const session = useRef(null); // (1) the session the server issues: in a real app, keep it (localStorage)
  const [transport] = useState(
    () =>
      new DefaultChatTransport({
        api: API, // (2)
        // (3) an anonymous caller's conversations are their session's: send it back on every turn
        headers: () => (session.current ? { "X-Session-Id": session.current } : {}),
        // (4) with sign-in on, also send the ID token: { Authorization: `Bearer ${idToken}` }
      }),
  );
  const [id] = useState(() => crypto.randomUUID()); // (5) the chat id is the conversation id
  const { messages, sendMessage, status, stop, error } = useChat({
    id, // (6)
    transport, // (7)
  });
  // (8) `start` and `finish` carry metadata: session, conversation, turn (for /api/chat/stop), usage, turns, title.
  // Keep the session from `start`: a stopped reply has no `finish` (and ai 5.0.0 calls no onFinish then).
  session.current = messages.findLast((message) => message.metadata?.session)?.metadata.session ?? session.current;
  const [input, setInput] = useState("");
  const busy = status === "submitted" || status === "streaming";
  // Stop: abort the fetch (locally that alone stops Claude), and name the turn to the stop route, because
  // in AWS a streaming function never learns that its client left. The `start` chunk carried the turn.
  const stopReply = () => {
    const turn = messages.at(-1)?.role === "assistant" ? messages.at(-1).metadata?.turn : undefined;
    stop();
    if (turn) {
      const headers = { "Content-Type": "application/json" };
      fetch(STOP, { method: "POST", headers, body: JSON.stringify({ turn }), keepalive: true });
    }
  };
  const turns = messages.findLast((message) => message.role === "assistant")?.metadata?.turns;

  return (
    <main data-status={status}>
      <h1>useChat and claude-chat</h1>
      <ol id="messages">
        {messages.map((message) => (
          <li key={message.id} data-role={message.role}>
            {textOf(message)}
          </li>
        ))}
      </ol>
      {/* (9) an error's message is the contract's JSON error ({"error", "code"}), before or during the stream */}
      {error && <p role="alert">{JSON.parse(error.message).error}</p>}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (!input.trim() || busy) return;
          sendMessage({ text: input }); // (10)
          setInput("");
        }}
      >
        <input aria-label="Message" value={input} onChange={(event) => setInput(event.target.value)} />
        <button type="submit" disabled={busy}>
          Send
        </button>
        <button type="button" onClick={stopReply} disabled={!busy}>
          Stop
        </button>
      </form>
      <p id="turns">{turns ? `${turns} turns saved` : ""}</p>
    </main>
  );
}
