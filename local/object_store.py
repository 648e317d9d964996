"""An embedded S3 for `make dev` and the tests: moto's server, with the bucket template.yaml defines.

The attachments bucket is created with the template's CORS rules (its origins
from CORS_ALLOW_ORIGINS, as the template's come from CorsAllowOrigins), so a
page on an allowed origin uploads and downloads here as it would from S3.

moto stores a presigned POST's file without checking its policy; S3 checks it
(signature, expiry, every condition). `_PostPolicy` checks the same before moto
sees the upload, so locally an upload past its declared size, of another type
or to another key is refused as S3 refuses it (403 AccessDenied or 400
EntityTooLarge, as XML), and an expired or forged form too, or one with a field
the policy does not name (a Content-Disposition of the uploader's, say). moto also ignores
the POST's `tagging` field; the policy middleware applies it after the upload.
The lifecycle rules themselves are AWS's: locally, nothing expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from moto.moto_server.werkzeug_app import create_backend_app
from werkzeug.formparser import parse_form_data
from werkzeug.serving import BaseWSGIServer, make_server

from local.template import load_template

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
LOCAL_BUCKET = "claude-chat-local-attachments"
# The form fields S3 lets a policy leave unnamed; any other must be named by one of its conditions.
_UNNAMED_FIELDS = {"policy", "x-amz-signature", "file"}
_TAG = re.compile(r"<Tag><Key>([^<]*)</Key><Value>([^<]*)</Value></Tag>")


def _xml_error(start_response: Callable[..., Any], status: str, code: str, message: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


class _PostPolicy:
    """Checks a browser-based upload (POST with a policy) as S3 does, then lets moto store it."""

    def __init__(
        self, app: WsgiApp, secret_key: Callable[[], str], region: str, tag: Callable[[str, str, str], None]
    ) -> None:
        self._app = app
        self._secret = secret_key  # read at each upload: the credentials the functions sign with now
        self._region = region
        self._tag = tag

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        content_type = environ.get("CONTENT_TYPE", "")
        if environ["REQUEST_METHOD"] != "POST" or not content_type.startswith("multipart/form-data"):
            return self._app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        _, form, files = parse_form_data(
            {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        )
        upload = files.get("file")
        data = upload.read() if upload is not None else b""
        bucket = environ.get("PATH_INFO", "/").strip("/").split("/", 1)[0]
        refusal = self._refusal(form, bucket, len(data))
        if refusal is not None:
            status, code, message = refusal
            return _xml_error(start_response, status, code, message)
        environ["wsgi.input"] = io.BytesIO(body)
        answer = list(self._app(environ, start_response))
        tagging = form.get("tagging")
        if tagging:
            # Only what the signed policy allowed reaches here (an `eq` condition names it exactly).
            for name, value in _TAG.findall(str(tagging)):
                self._tag(bucket, str(form.get("key", "")), f"{name}={value}")
        return answer

    def _refusal(self, form: Any, bucket: str, size: int) -> tuple[str, str, str] | None:  # noqa: PLR0911 - one per S3 error
        policy_b64 = form.get("policy", "")
        try:
            policy = json.loads(base64.b64decode(policy_b64))
        except ValueError:
            return "400 Bad Request", "InvalidPolicyDocument", "Invalid Policy: Invalid JSON."
        if not hmac.compare_digest(self._signature(form, policy_b64), str(form.get("x-amz-signature", ""))):
            return (
                "403 Forbidden",
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match.",
            )
        expiration = datetime.fromisoformat(str(policy.get("expiration", "")).replace("Z", "+00:00"))
        if expiration < datetime.now(UTC):
            return "403 Forbidden", "AccessDenied", "Invalid according to Policy: Policy expired."
        conditions = policy.get("conditions", [])
        named = {
            str(next(iter(c)) if isinstance(c, dict) else c[1]).lstrip("$").lower()
            for c in conditions
            if isinstance(c, dict) or c[0] in ("eq", "starts-with")
        }
        extra = sorted(
            name
            for name in (str(n).lower() for n in form)
            if name not in named and name not in _UNNAMED_FIELDS and not name.startswith("x-ignore-")
        )
        if extra:
            return (
                "403 Forbidden",
                "AccessDenied",
                f"Invalid according to Policy: Extra input fields: {', '.join(extra)}",
            )
        for condition in conditions:
            if isinstance(condition, dict):
                ((name, expected),) = condition.items()
                value = bucket if name == "bucket" else form.get(name)
                if value != expected:
                    return (
                        "403 Forbidden",
                        "AccessDenied",
                        f"Invalid according to Policy: Policy Condition failed: {name}",
                    )
            elif condition[0] == "content-length-range":
                low, high = int(condition[1]), int(condition[2])
                if size > high:
                    return (
                        "400 Bad Request",
                        "EntityTooLarge",
                        "Your proposed upload exceeds the maximum allowed size",
                    )
                if size < low:
                    return (
                        "400 Bad Request",
                        "EntityTooSmall",
                        "Your proposed upload is smaller than the minimum allowed size",
                    )
            elif condition[0] in ("eq", "starts-with"):
                name, expected = str(condition[1]).lstrip("$"), str(condition[2])
                value = bucket if name == "bucket" else str(form.get(name, ""))
                if (value != expected) if condition[0] == "eq" else not value.startswith(expected):
                    return (
                        "403 Forbidden",
                        "AccessDenied",
                        f"Invalid according to Policy: Policy Condition failed: {name}",
                    )
        return None

    def _signature(self, form: Any, policy_b64: str) -> str:
        date = str(form.get("x-amz-credential", "")).split("/")[1:2] or [""]
        key = ("AWS4" + self._secret()).encode()
        for part in (date[0], self._region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()


class LocalObjectStore:
    def __init__(
        self, secret_key: Callable[[], str], region: str, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._moto: WsgiApp = create_backend_app("s3")
        app = _PostPolicy(self._moto, secret_key, region, self._tag)
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3", daemon=True)
        self._client: Any = None

    def _tag(self, bucket: str, key: str, tag: str) -> None:
        name, _, value = tag.partition("=")
        self._client.put_object_tagging(
            Bucket=bucket, Key=key, Tagging={"TagSet": [{"Key": name, "Value": value}]}
        )

    def start(self, client: Any) -> LocalObjectStore:
        self._client = client
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()


def create_bucket(client: Any, bucket: str, origins: list[str]) -> None:
    """The attachments bucket with template.yaml's CORS rules (origins from CORS_ALLOW_ORIGINS)."""
    client.create_bucket(Bucket=bucket)
    properties = load_template()["Resources"]["AttachmentsBucket"]["Properties"]
    # CloudFormation's names for the S3 API's (MaxAge is MaxAgeSeconds, and so on).
    names = {"MaxAge": "MaxAgeSeconds", "ExposedHeaders": "ExposeHeaders", "Id": "ID"}
    rules = [
        {**{names.get(k, k): v for k, v in rule.items() if k != "AllowedOrigins"}, "AllowedOrigins": origins}
        for rule in properties["CorsConfiguration"]["CorsRules"]
    ]
    client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
