"""`make dev`: every route of the contract on one local origin, running the AWS handler code.

Starts an embedded DynamoDB (table from template.yaml), the Messages-API
stand-in when no ANTHROPIC_API_KEY is set, and worker processes that run each
function's handler on the payload-2.0 event its function URL would send. The
chat page in web/ is served at `/`, with a config.json that points it at this
same origin (web/config.json, written for a deployed stack, is not used here).

With DEV_SIGN_IN=1 it also starts a local OpenID provider (local/dev_sign_in.py), makes every
route require its tokens, and tells the page where to sign in through that config.json.
"""

from __future__ import annotations

import ipaddress
import json
import multiprocessing.util
import os
import secrets
import shutil
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from local.dev_sign_in import DevProvider, ProviderError, redirect_uris, start_provider
from local.function_url import CorsPolicy, http_result, lambda_event
from local.lambda_runtime import LAYER_PATH, FunctionWorkers, function_timeout, load_handler_module
from local.page_headers import with_page_headers
from local.template import FunctionSpec, url_functions
from local.web_adapter import call_app, call_snapstart_hooks

if TYPE_CHECKING:
    from local.dynamodb import WsgiMiddleware  # imported when used: moto is slow to import

DEFAULT_PORT = 3000
LOCAL_TABLE = "claude-chat-local"
WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
DEV_PRO_TOKEN_BUDGET = 1_000_000  # DEV_SIGN_IN's daily tokens for group "pro" (grace)


class LocalFunctionUrls:
    """Routes each request to the function that serves it, as separate function URLs would.

    Buffered functions run in worker processes on the event their URL would
    send; the streaming function's ASGI app runs here, fed through the same
    event and the Web Adapter's conversion, so it reads the same request
    context as in AWS.
    """

    def __init__(self, specs: list[FunctionSpec], workers: FunctionWorkers, allow_origins: list[str]) -> None:
        self._workers = workers
        self._routes: dict[tuple[str, str], FunctionSpec] = {}
        self._paths: dict[str, set[str]] = {}
        self._cors: dict[str, CorsPolicy] = {}
        self._streaming_apps: dict[str, Any] = {}
        self._timeouts = {spec.logical_id: function_timeout(spec) for spec in specs}
        self.openapi: dict[str, Any] = {"openapi": "3.1.0", "paths": {}, "components": {"schemas": {}}}
        for spec in specs:
            module = load_handler_module(spec)
            if spec.invoke_mode == "RESPONSE_STREAM":
                self._streaming_apps[spec.logical_id] = module.app
                routes = {route.path: set(route.methods or ()) - {"HEAD"} for route in module.ROUTES}
                self._merge_openapi(module.openapi_document())
            else:
                routes = module.app.route_methods
                self._merge_openapi(module.app.openapi_document())
            for path, methods in routes.items():
                for method in methods:
                    self._routes[(method, path)] = spec
                self._paths.setdefault(path, set()).update(methods)
            self._cors[spec.logical_id] = CorsPolicy(spec.cors, allow_origins)

    def call_snapstart_hooks(self) -> None:
        """Each streaming app's SnapStart hooks, once, as its Web Adapter calls them around a snapshot."""
        import asyncio

        for app in self._streaming_apps.values():
            asyncio.run(call_snapstart_hooks(app))

    def _merge_openapi(self, schema: dict[str, Any]) -> None:
        for key in ("openapi", "info"):
            self.openapi[key] = schema.get(key, self.openapi.get(key))
        for path, operations in schema.get("paths", {}).items():
            self.openapi["paths"].setdefault(path, {}).update(operations)
        self.openapi["components"]["schemas"].update(schema.get("components", {}).get("schemas", {}))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        path, method = request.url.path, request.method.upper()
        rule = self._rule_for(path)
        origin = request.headers.get("origin")
        if method == "OPTIONS" and origin and rule in self._paths:
            await self._preflight(request, rule)(scope, receive, send)
            return
        target = self._routes.get((method, rule))
        if target is None:
            await self._no_route(rule)(scope, receive, send)
            return
        event = lambda_event(
            method=method,
            path=path,
            query_string=request.url.query,
            headers=request.headers.items(),
            body=await request.body(),
            peer_ip=request.client.host if request.client else "127.0.0.1",
        )
        cors = self._cors[target.logical_id].actual(origin)
        if target.logical_id in self._streaming_apps:
            await self._stream(target.logical_id, event, receive, send, cors)
            return
        result = http_result(await self._workers.invoke(target.logical_id, event))
        response = Response(content=result.body, status_code=result.status)
        for name, value in result.headers + cors:
            response.headers.append(name, value)
        await response(scope, receive, send)

    async def _stream(
        self,
        logical_id: str,
        event: dict[str, Any],
        receive: Receive,
        send: Send,
        cors: list[tuple[str, str]],
    ) -> None:
        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], *_encoded(cors)]}
            await send(message)

        app = self._streaming_apps[logical_id]
        await call_app(app, event, logical_id, receive, send_with_cors, self._timeouts[logical_id])

    def _rule_for(self, path: str) -> str:
        """The route rule a path belongs to: itself, or a rule with parameters (`.../<conversation_id>`)."""
        if path in self._paths:
            return path
        from claude_chat.http_api import rule_matches

        return next((rule for rule in self._paths if "<" in rule and rule_matches(rule, path)), path)

    def _preflight(self, request: Request, path: str) -> Response:
        wanted = request.headers.get("access-control-request-method", "")
        spec = self._routes.get((wanted.upper(), path)) or next(
            spec for (_, route_path), spec in self._routes.items() if route_path == path
        )
        headers = self._cors[spec.logical_id].preflight(
            request.headers.get("origin"), wanted, request.headers.get("access-control-request-headers")
        )
        return Response(status_code=200, headers=dict(headers))

    def _no_route(self, path: str) -> Response:
        from claude_chat.errors import MethodNotAllowed, NotFound

        allowed = sorted(self._paths.get(path, set()))
        error = MethodNotAllowed(allowed) if allowed else NotFound()
        return Response(
            error.json(), status_code=error.status, headers=error.headers, media_type="application/json"
        )


def _encoded(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in headers]


def _prepare_environment(wrap_dynamodb: WsgiMiddleware | None = None) -> list[str]:
    """Points the AWS SDK at the embedded DynamoDB and Claude at the stand-in; returns notes to print."""
    import boto3

    from local.dynamodb import LocalDynamoDB, create_table

    notes = []
    for name, value in {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TABLE_NAME": LOCAL_TABLE,
    }.items():
        os.environ.setdefault(name, value)
    dynamodb = LocalDynamoDB(port=int(os.environ.get("DYNAMODB_PORT", "0")), wrap=wrap_dynamodb).start()
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb.url
    create_table(boto3.client("dynamodb"), os.environ["TABLE_NAME"])
    notes.append(f"DynamoDB: embedded (moto) at {dynamodb.url}, table {os.environ['TABLE_NAME']!r}")
    notes.append(_prepare_object_store())
    if _on_bedrock():
        notes.append(_prepare_bedrock())
    elif os.environ.get("ANTHROPIC_API_KEY"):
        where = os.environ.get("ANTHROPIC_BASE_URL", "the Anthropic API")
        notes.append(f"Claude: {where}, with your ANTHROPIC_API_KEY")
    else:
        from local.messages_standin import start_in_thread

        standin = start_in_thread(port=int(os.environ.get("STANDIN_PORT", "0")))
        os.environ["ANTHROPIC_API_KEY"] = "local-standin"
        os.environ["ANTHROPIC_BASE_URL"] = standin.url
        notes.append(
            "Claude: no ANTHROPIC_API_KEY set, so replies come from the local Messages-API stand-in"
            f" at {standin.url} (deterministic; see local/messages_standin/replies.py for its directives)"
        )
    if not os.environ.get("SESSION_SECRET"):
        os.environ["SESSION_SECRET"] = secrets.token_urlsafe(32)
        notes.append("Sessions: signed with a random key for this run (set SESSION_SECRET to keep them)")
    return notes


def _prepare_object_store() -> str:
    """The attachments bucket in an embedded S3 (moto, with S3's POST policy checks: object_store.py)."""
    import boto3
    from botocore.config import Config

    from local.object_store import LOCAL_BUCKET, LocalObjectStore, create_bucket

    region = os.environ["AWS_DEFAULT_REGION"]
    # Uploads are checked against the functions' current credentials (Bedrock's fake ones replace these).
    store = LocalObjectStore(
        lambda: os.environ["AWS_SECRET_ACCESS_KEY"], region, port=int(os.environ.get("S3_PORT", "0"))
    )
    os.environ["AWS_ENDPOINT_URL_S3"] = store.url
    os.environ.setdefault("ATTACHMENTS_BUCKET", LOCAL_BUCKET)
    client = boto3.client("s3", config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    store.start(client)
    origins = [
        origin.strip() for origin in os.environ.get("CORS_ALLOW_ORIGINS", "*").split(",") if origin.strip()
    ]
    create_bucket(client, os.environ["ATTACHMENTS_BUCKET"], origins)
    return f"Attachments: embedded S3 (moto) at {store.url}, bucket {os.environ['ATTACHMENTS_BUCKET']!r}"


def _on_bedrock() -> bool:
    return os.environ.get("CLAUDE_PROVIDER", "").strip().lower() == "bedrock"


def _prepare_bedrock() -> str:
    """CLAUDE_PROVIDER=bedrock: the real AnthropicBedrock client, signing for the local stand-in.

    Unless ANTHROPIC_BEDROCK_BASE_URL names a Bedrock endpoint of your own, the stand-in plays
    Bedrock's runtime API and checks each request's SigV4 signature against fake credentials set
    here (yours, if any, are not used: nothing reaches AWS). No AWS account is needed.
    """
    if os.environ.get("ANTHROPIC_BEDROCK_BASE_URL"):
        return (
            f"Claude: Amazon Bedrock at {os.environ['ANTHROPIC_BEDROCK_BASE_URL']}, with your AWS credentials"
        )
    from local.messages_standin import start_in_thread
    from local.messages_standin.bedrock import BedrockRuntime, Credentials

    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK"):
        os.environ.pop(name, None)
    fake = {"AWS_ACCESS_KEY_ID": "local-bedrock", "AWS_SECRET_ACCESS_KEY": "local-bedrock-secret"}
    os.environ.update(fake)  # the stand-in's own, known to it: never a real credential
    region = os.environ.get("AWS_REGION") or os.environ["AWS_DEFAULT_REGION"]
    credentials = Credentials(region, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    standin = start_in_thread(
        port=int(os.environ.get("STANDIN_PORT", "0")),
        extra_routes=lambda messages: BedrockRuntime(messages, credentials).routes(),
    )
    os.environ["ANTHROPIC_BEDROCK_BASE_URL"] = standin.url
    return (
        f"Claude: Amazon Bedrock (CLAUDE_PROVIDER=bedrock), played by the local stand-in at {standin.url}"
        f" (SigV4 for bedrock in {region} checked; see local/messages_standin/bedrock.py)"
    )


def _apply_template_environment(specs: list[FunctionSpec]) -> None:
    """The template's literal environment values (not the !Ref ones) apply locally too, unless overridden."""
    for spec in specs:
        for name, value in spec.environment.items():
            if isinstance(value, str | int | float):
                os.environ.setdefault(name, str(value))


def _dev_sign_in_enabled() -> bool:
    return os.environ.get("DEV_SIGN_IN", "").strip().lower() in {"1", "true", "yes", "on"}


def _start_sign_in(port: int) -> DevProvider:
    """The local provider, and the backend's sign-in settings pointed at it (before any worker starts)."""
    origins = os.environ.get("CORS_ALLOW_ORIGINS", "*").split(",")
    ttl = os.environ.get("OIDC_ACCESS_TOKEN_TTL")
    provider = start_provider(
        redirect_uris(port, origins),
        port=int(os.environ.get("OIDC_PORT", "0")),
        access_token_ttl=int(ttl) if ttl else None,
    )
    os.environ.update(provider.environment())
    # The test user in group "pro" gets more, as an operator's paying users would (unless set).
    os.environ.setdefault("GROUP_TOKEN_BUDGETS", json.dumps({"pro": DEV_PRO_TOKEN_BUDGET}))
    return provider


def _page_config(provider: DevProvider | None) -> dict[str, str]:
    """The page's config.json: same origin for every route, and where to sign in when it is on.

    Without DEV_SIGN_IN, an issuer of your own (OIDC_ISSUER with OIDC_CLIENT_ID, the page's client)
    is passed on too; with neither it is `{}`, as it always was.
    """
    if provider is not None:
        return provider.page_config()
    issuer, client_id = os.environ.get("OIDC_ISSUER"), os.environ.get("OIDC_CLIENT_ID")
    return {"issuer": issuer, "clientId": client_id} if issuer and client_id else {}


def build_app(
    port: int = DEFAULT_PORT, wrap_dynamodb: WsgiMiddleware | None = None
) -> tuple[Starlette, FunctionWorkers, list[str], DevProvider | None]:
    """The app, its workers, notes to print, and the local provider when DEV_SIGN_IN is on."""
    notes = _prepare_environment(wrap_dynamodb)
    provider = _start_sign_in(port) if _dev_sign_in_enabled() else None
    if provider is not None:
        notes.extend(provider.notes())
        notes.append(f"Sign-in: daily token budgets by group: {os.environ['GROUP_TOKEN_BUDGETS']}")
    specs = url_functions()
    _apply_template_environment(specs)
    buffered = [spec for spec in specs if spec.invoke_mode != "RESPONSE_STREAM"]
    workers = FunctionWorkers(buffered, workers=int(os.environ.get("DEV_WORKERS", "4")))
    workers.warm_up()
    origins = os.environ.get("CORS_ALLOW_ORIGINS", "*").split(",")
    urls = LocalFunctionUrls(specs, workers, origins)
    urls.call_snapstart_hooks()

    async def openapi(_: Request) -> JSONResponse:
        return JSONResponse(urls.openapi)

    config = _page_config(provider)

    async def same_origin_config(_: Request) -> JSONResponse:
        return JSONResponse(config, headers={"cache-control": "no-store"})

    page = with_page_headers(StaticFiles(directory=WEB_ROOT, html=True))

    async def api_or_page(scope: Scope, receive: Receive, send: Send) -> None:
        is_api = scope["type"] != "http" or scope["path"].startswith("/api/")
        await (urls if is_api else page)(scope, receive, send)

    routes = [
        Route("/api/openapi.json", openapi, methods=["GET"]),
        Route("/config.json", same_origin_config, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.router.default = api_or_page
    return app, workers, notes, provider


def listening_socket(host: str) -> socket.socket | None:
    """For HOST=:: a dual-stack socket (IPv6 and IPv4 on one port); None lets uvicorn bind any other host.

    asyncio marks every IPv6 listening socket IPv6-only, so without this `HOST=::` would refuse IPv4
    clients. On the dual-stack socket an IPv4 client arrives as `::ffff:a.b.c.d`, which the rate limit
    keys as the IPv4 address it maps.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version != 6 or not address.is_unspecified:
        return None
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    return sock


def display_url(host: str, port: int) -> str:
    """A URL a browser on this machine can open: a wildcard host becomes loopback, IPv6 gets brackets."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}/"
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    return f"http://[{address}]:{port}/" if address.version == 6 else f"http://{address}:{port}/"


def _stop(workers: FunctionWorkers, provider: DevProvider | None, code: int) -> NoReturn:
    """Ends `make dev` at once, its own mess cleaned, never waiting on a worker.

    Not through Python's exit: at exit the process pool joins its workers, and in a full test run
    a server once waited more than 20 s there. Workers leave by themselves when the server is
    gone (local/lambda_runtime.py); the fork server's socket directory (a pymp-* in TMPDIR),
    which only Python's exit would remove, is removed here.
    """
    workers.close()
    if provider is not None:
        provider.stop()
    shutil.rmtree(multiprocessing.util.get_temp_dir(), ignore_errors=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(wrap_dynamodb: WsgiMiddleware | None = None) -> None:
    """`make dev`. `wrap_dynamodb` puts WSGI middleware in front of the embedded DynamoDB (the
    benchmarks' call recorder, tests/benchmarks/counted_dynamodb.py); `make dev` passes none."""
    sys.path.insert(0, str(LAYER_PATH))
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", str(DEFAULT_PORT)))
    sock = listening_socket(host)
    if sock is not None:
        sock.bind((host, port))  # before the slow start-up, so a taken port fails at once
    try:
        app, workers, notes, provider = build_app(port, wrap_dynamodb)
    except ProviderError as error:
        sys.exit(f"make dev: {error}")
    for note in notes:
        print(note, flush=True)
    print(
        f"Chat page: {display_url(host, port)}  (API under /api/, OpenAPI at /api/openapi.json)", flush=True
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level=os.environ.get("DEV_LOG_LEVEL", "warning"))
    )
    # uvicorn shuts down on SIGTERM and Ctrl-C, then raises the signal again: end through _stop
    # (exit status as a shell reports a process ended by the signal), not the default handler's
    # instant death, which left the fork server's socket directory behind at every `kill`.
    signal.signal(signal.SIGTERM, lambda signum, _frame: _stop(workers, provider, 128 + signum))
    try:
        server.run(sockets=[sock] if sock is not None else None)
    except KeyboardInterrupt:
        _stop(workers, provider, 128 + signal.SIGINT)
    _stop(workers, provider, 0)


if __name__ == "__main__":
    main()
