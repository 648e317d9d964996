// A useChat page for this backend: the lines a Next.js or Vite app needs are marked (1) to (11).
import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport } from "ai";
import { useRef, useState } from "react";

// The stream function's URL + /api/chat/ui (here from ?api=..., so a test can point it anywhere).
const API = new URLSearchParams(location.search).get("api") ?? "http://127.0.0.1:3000/api/chat/ui";
const STOP = API.replace(/\/api\/chat\/ui$/, "/api/chat/stop");
// What the server takes as a file (each checked by its bytes): images up to 5 MB, PDFs up to 32 MB,
// within the 6 MB a function URL takes per request (larger files: POST /api/attachments).
const FILE_TYPES = "image/jpeg,image/png,image/gif,image/webp,application/pdf";

/** One part of a message: text, the files it carried, Claude's thinking; tools and data parts are not ours. */
function Part({ part }) {
  switch (part.type) {
    case "text":
      return <p>{part.text}</p>;
    case "reasoning": // with THINKING_BUDGET_TOKENS set: Claude's thinking, before the text
      return (
        <details>
          <summary>Thinking</summary>
          {part.text}
        </details>
      );
    case "file":
      return part.mediaType.startsWith("image/") ? (
        <img src={part.url} alt={part.filename ?? "an attached image"} height={96} />
      ) : (
        <a href={part.url} download={part.filename}>
          {part.filename ?? "attached PDF"}
        </a>
      );
    default:
      return null;
  }
}

/** The sources a reply cites, once each: web pages (WEB_SEARCH_MAX_USES) and PDFs the turn carried. */
function Sources({ parts }) {
  const sources = parts.filter((part) => part.type === "source-url" || part.type === "source-document");
  if (!sources.length) return null;
  return (
    <ul aria-label="Sources">
      {sources.map((source) => (
        <li key={source.sourceId}>
          {source.type === "source-url" ? <a href={source.url}>{source.title ?? source.url}</a> : source.title}
        </li>
      ))}
    </ul>
  );
}

export function App() {
  const session = useRef(null); // (1) the session the server issues: in a real app, keep it (localStorage)
  const [transport] = useState(
    () =>
      new DefaultChatTransport({
        api: API, // (2)
        // (3) an anonymous caller's conversations are their session's: send it back on every turn
        headers: () => (session.current ? { "X-Session-Id": session.current } : {}),
        // (4) with sign-in on, also send the ID token: { Authorization: `Bearer ${idToken}` }
        // (5) only the last message is read: send only it, so files sent earlier do not ride along
        prepareSendMessagesRequest: ({ id, messages, trigger, messageId }) => ({
          body: { id, messages: messages.slice(-1), trigger, messageId },
        }),
      }),
  );
  const [id] = useState(() => crypto.randomUUID()); // (6) the chat id is the conversation id
  const { messages, sendMessage, status, stop, error } = useChat({
    id, // (7)
    transport, // (8)
  });
  // (9) `start` and `finish` carry metadata: session, conversation, turn (for /api/chat/stop), usage, turns, title.
  // Keep the session from `start`: a stopped reply has no `finish` (and ai 5.0.0 calls no onFinish then).
  session.current = messages.findLast((message) => message.metadata?.session)?.metadata.session ?? session.current;
  const [input, setInput] = useState("");
  const [files, setFiles] = useState(undefined); // a FileList from the file input
  const fileInput = useRef(null);
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
            {message.parts.map((part, index) => (
              <Part key={index} part={part} />
            ))}
            <Sources parts={message.parts} />
          </li>
        ))}
      </ol>
      {/* (10) an error's message is the contract's JSON error ({"error", "code"}), before or during the stream */}
      {error && <p role="alert">{JSON.parse(error.message).error}</p>}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if ((!input.trim() && !files?.length) || busy) return;
          // (11) files go as `file` parts (data URLs); each becomes an attachment of the turn
          sendMessage({ text: input, files });
          setInput("");
          setFiles(undefined);
          fileInput.current.value = "";
        }}
      >
        <input aria-label="Message" value={input} onChange={(event) => setInput(event.target.value)} />
        <input
          type="file"
          aria-label="Attach files"
          accept={FILE_TYPES}
          multiple
          ref={fileInput}
          onChange={(event) => setFiles(event.target.files)}
        />
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
