// Server-Sent Events read from a fetch() body.
//
// Why not EventSource: it can only GET, and the chat routes are POSTs that carry
// a JSON body and the X-Session-Id header. This follows the WHATWG parsing rules
// for what the contract uses: `data:` lines (several join with "\n"), comments,
// any line ending, and events split anywhere across network chunks.

/** Yields the data of each event in the stream, as a string, as soon as its blank line arrives. */
export async function* serverSentEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      // A trailing "\r" may be the first half of "\r\n": keep it until the next chunk.
      const lines = buffered.split(/\r\n|\r(?!$)|\n/);
      buffered = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield data.join("\n");
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        }
        // Comments (":"), event:, id: and retry: lines carry nothing the chat uses.
      }
    }
  } finally {
    // Also when the reader of this generator stops early: close the connection.
    await reader.cancel().catch(() => {});
  }
}
