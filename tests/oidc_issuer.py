"""A test issuer: OpenID discovery and a JWKS on loopback, and tokens signed with its keys.

The integration tests need tokens a real provider would never issue (expired,
for another audience, signed with a key it dropped), so this serves the two
documents a verifier reads and mints whatever a test asks for. `make dev`
itself signs in through a real provider (local/oidc); this is for tests only.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "claude-chat-test-api"


@dataclass
class FakeIssuer:
    server: ThreadingHTTPServer
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> private key, published while present
    fetches: int = 0

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def add_key(self, kid: str, kind: str = "RSA") -> None:
        self.keys[kid] = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kind == "RSA"
            else ec.generate_private_key(ec.SECP256R1())
        )

    def jwks(self) -> dict[str, Any]:
        published = []
        for kid, key in self.keys.items():
            algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
            jwk = json.loads(algorithm.to_jwk(key.public_key()))
            published.append(
                {**jwk, "kid": kid, "use": "sig", "alg": "RS256" if algorithm is RSAAlgorithm else "ES256"}
            )
        return {"keys": published}

    def token(self, subject: str, *, kid: str | None = None, lifetime: int = 300, **claims: Any) -> str:
        kid = kid or next(iter(self.keys))
        key = self.keys[kid]
        now = int(time.time())
        payload = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "exp": now + lifetime,
            **claims,
        }
        algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_test_issuer() -> FakeIssuer:
    issuer: FakeIssuer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
            elif self.path == "/jwks":
                issuer.fetches += 1
                body = issuer.jwks()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer = FakeIssuer(server)
    issuer.add_key("key-1")
    threading.Thread(target=server.serve_forever, name="test-issuer", daemon=True).start()
    return issuer
