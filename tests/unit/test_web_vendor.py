"""web/vendor/: the page's OpenID client is exactly what `make vendor` builds from package.json's pins."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "web" / "vendor"


def test_the_committed_bundle_is_a_fresh_build_of_the_pinned_package() -> None:
    node = shutil.which("node")
    assert node, "node is needed (make install runs npm ci)"
    done = subprocess.run(
        [node, "local/vendor_web.mjs", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout


def test_the_bundle_names_its_version_and_licence_and_the_pin_is_exact() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["oidc-client-ts"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), f"oidc-client-ts must be pinned exactly, not {pinned!r}"
    head = (VENDOR / "oidc-client-ts.js").read_text()[:400]
    assert f"oidc-client-ts {pinned} (Apache-2.0" in head
    licence = (VENDOR / "oidc-client-ts.LICENSE.txt").read_text()
    assert "Apache License" in licence
    assert "MIT" in licence or "Permission is hereby granted" in licence  # jwt-decode's


def test_the_bundle_is_one_module_that_imports_nothing() -> None:
    text = (VENDOR / "oidc-client-ts.js").read_text()
    assert not re.search(r"^\s*import\s", text, re.MULTILINE)
    assert "require(" not in text
    assert re.search(r"^export \{", text, re.MULTILINE)
