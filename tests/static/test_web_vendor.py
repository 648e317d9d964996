"""web/vendor/: the page's libraries are exactly what `make vendor` builds from package.json's pins."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "web" / "vendor"
PINS = json.loads((ROOT / "package.json").read_text())["devDependencies"]

# Each bundle: its main package, that package's licence, and what a bundled dependency's licence says.
BUNDLES = {
    "oidc-client-ts": ("oidc-client-ts", "Apache-2.0", ["Apache License", "Permission is hereby granted"]),
    "markdown-it": ("markdown-it", "MIT", ["Permission is hereby granted", "entities 8", "Redistribution"]),
    "highlight": ("highlight.js", "BSD-3-Clause", ["BSD 3-Clause", "Redistribution and use"]),
}


def test_the_committed_bundles_are_a_fresh_build_of_the_pinned_packages() -> None:
    node = shutil.which("node")
    assert node, "node is needed (make install runs npm ci)"
    done = subprocess.run(
        [node, "local/vendor_web.mjs", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout


def test_every_vendored_file_is_one_make_vendor_makes() -> None:
    expected = {f"{name}{suffix}" for name in BUNDLES for suffix in (".js", ".LICENSE.txt")}
    assert {path.name for path in VENDOR.iterdir()} == expected


@pytest.mark.parametrize("bundle", BUNDLES)
def test_each_bundle_names_its_version_and_licence_and_the_pin_is_exact(bundle: str) -> None:
    package, licence_name, licence_texts = BUNDLES[bundle]
    pinned = PINS[package]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), f"{package} must be pinned exactly, not {pinned!r}"
    head = (VENDOR / f"{bundle}.js").read_text()[:1200]
    assert f"{package} {pinned} ({licence_name}" in head
    licence = (VENDOR / f"{bundle}.LICENSE.txt").read_text()
    assert licence.startswith(f"{package} {pinned}\n")
    for text in licence_texts:
        assert text in licence, (bundle, text)
    # Every dependency named in the banner has its licence in the file.
    for dependency, version in re.findall(r"([\w.-]+) (\d+\.\d+\.\d+) \(", head):
        assert f"{dependency} {version}\n" in licence, (bundle, dependency)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_each_bundle_is_one_module_that_imports_nothing(bundle: str) -> None:
    text = (VENDOR / f"{bundle}.js").read_text()
    assert not re.search(r"^\s*import[\s(]", text, re.MULTILINE)
    # A call of require() outside comments (esbuild names its own CommonJS wrappers __require).
    assert not re.search(r"^(?!\s*(?:\*|//)).*(?<![\w$.])require\(", text, re.MULTILINE)
    assert re.search(r"^export \{", text, re.MULTILINE)
