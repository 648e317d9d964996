"""`make web-config`: point the chat page at a deployed stack.

Reads `sam list stack-outputs --output json` on stdin and writes web/config.json
with the three function URLs, which the page reads at start (and, when the stack
requires sign-in, the issuer and the page's client id). Kept apart from
the page so that the same static files work under `make dev` (same origin, no
config) and from any host in front of the deployed stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# template.yaml's output for each function URL, by the page's config field.
OUTPUT_KEYS = {"chatUrl": "ChatUrl", "historyUrl": "HistoryUrl", "streamUrl": "StreamUrl"}
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "web" / "config.json"


def page_config(stack_outputs: list[dict[str, Any]]) -> dict[str, str]:
    """The page's config from the stack's outputs; a missing URL output is an error, not a guess.

    With sign-in on, the stack also outputs its issuer and the page's client id: the page then
    shows "Sign in". The issuer is kept exactly as output (tokens' `iss` must equal it, and some
    issuers end in a slash); an issuer without a client id would leave the page unable to sign in.
    """
    values = {str(output.get("OutputKey")): str(output.get("OutputValue", "")) for output in stack_outputs}
    missing = [key for key in OUTPUT_KEYS.values() if not values.get(key, "").startswith("https://")]
    if missing:
        raise ValueError(f"the stack has no function URL output(s) {', '.join(missing)}; is it deployed?")
    config = {field: values[key].rstrip("/") for field, key in OUTPUT_KEYS.items()}
    issuer, client_id = values.get("OidcIssuer", "").strip(), values.get("OidcClientId", "").strip()
    if issuer or client_id:
        if not (issuer and client_id):
            raise ValueError("the stack outputs only one of OidcIssuer and OidcClientId; the page needs both")
        if not issuer.startswith("https://"):
            raise ValueError(f"the stack's OidcIssuer {issuer!r} is not an https URL")
        config.update(issuer=issuer, clientId=client_id)
        # Cognito's discovery document names no end-session endpoint; its hosted UI has /logout.
        hosted_ui = values.get("HostedUiUrl", "").strip().rstrip("/")
        if hosted_ui.startswith("https://"):
            config["logoutUrl"] = f"{hosted_ui}/logout"
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args()
    try:
        config = page_config(json.load(sys.stdin))
    except (ValueError, TypeError, AttributeError) as error:
        sys.exit(f"web-config: {error}")
    args.output.write_text(json.dumps(config, indent=2) + "\n")
    print(f"Wrote {args.output}: the page now calls {config['streamUrl']} and its sibling URLs.")
    if "issuer" in config:
        print(f"Sign-in: the page signs in at {config['issuer']} as client {config['clientId']}.")


if __name__ == "__main__":
    main()
