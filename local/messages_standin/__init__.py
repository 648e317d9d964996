"""A local stand-in for the Anthropic Messages API, for `make dev` and the tests.

Why: the code under test should run the real anthropic SDK code path (headers,
retries, SSE parsing, error classes) without the network, an API key or a bill.
So this speaks the real wire protocol -- JSON Message objects, `text/event-stream`
with the real event sequence, real error bodies and headers -- and answers
deterministically. One module per concern:

    wire.py      request validation, error bodies, the SSE framing of Messages-API events
    replies.py   what it answers, and the `[standin:...]` directives a test steers it with
    caching.py   prompt caching billed as the API bills it (per-model minimum, 5-minute
                 lifetime refreshed on a hit, at most 4 breakpoints, automatic caching)
    server.py    the routes, recorded requests and disconnects, serving from a thread or process
    bedrock.py   Amazon Bedrock's runtime API (SigV4, its binary event stream) around the same
                 replies, served by the same stand-in when its routes are passed to
                 `start_in_thread(extra_routes=...)`

Run alone with `python -m local.messages_standin --port 8787`, or in-process with
`start_in_thread()`.
"""

from local.messages_standin.server import MessagesStandin, StandinServer, create_app, start_in_thread

__all__ = ["MessagesStandin", "StandinServer", "create_app", "start_in_thread"]
