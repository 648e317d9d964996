"""`make web-config`: point the chat page at a deployed stack.

Reads `sam list stack-outputs --output json` on stdin and writes web/config.json
with the three function URLs, which the page reads at start. Kept apart from
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
    """The page's config from the stack's outputs; a missing URL output is an error, not a guess."""
    values = {str(output.get("OutputKey")): str(output.get("OutputValue", "")) for output in stack_outputs}
    missing = [key for key in OUTPUT_KEYS.values() if not values.get(key, "").startswith("https://")]
    if missing:
        raise ValueError(f"the stack has no function URL output(s) {', '.join(missing)}; is it deployed?")
    return {field: values[key].rstrip("/") for field, key in OUTPUT_KEYS.items()}


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


if __name__ == "__main__":
    main()
