# The two commands of runtime.md, and the checks around them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# GraphiQL's browser bundle for the dev explorer, from the committed lock (gateway/explorer.py).
EXPLORER_DIR   := gateway/explorer_assets
EXPLORER_STAMP := $(EXPLORER_DIR)/node_modules/.package-lock.json
# Checkov and kubernetes-validate pin many packages of their own: a venv apart,
# from its own lock (infra/tools.lock), never mixed into requirements.lock.
TOOLS  := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

.PHONY: dev seed test web-test faults lint typecheck architecture docs docs-generate docs-build bench lock tools-lock clean explorer

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(EXPLORER_STAMP): $(EXPLORER_DIR)/package-lock.json
	cd $(EXPLORER_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

explorer: $(EXPLORER_STAMP)

$(TOOLS_STAMP): infra/tools.lock
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r infra/tools.lock
	touch $@

# The explorer needs npm once; without it, GET /graphql in a browser says how to get it.
# The backend, and the web app (next dev on HAUNTED_WEB_PORT, default 3000) when
# Node 20+ is on PATH.
dev: $(STAMP)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory explorer; \
	else echo "npm not found: the GraphQL explorer stays off until 'make explorer'"; fi
	HAUNTED_BILLING_LOCAL_CHECKOUT=true web/scripts/dev.sh $(BIN)/haunted dev

# Demo data for `make dev` (its database): a team on the paid plan, prompt calls and a
# month of product events; `make dev` applies them. A second run writes nothing.
seed: $(STAMP)
	HAUNTED_BILLING_LOCAL_CHECKOUT=true $(BIN)/haunted seed

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m schemas.snapshot --check
	$(BIN)/python -m haunted.reference.proposed --check

typecheck: $(STAMP)
	$(BIN)/mypy

architecture: $(STAMP)
	$(BIN)/lint-imports

# Both backends: the embedded defaults (SQLite, in-process Redis) and the
# PostgreSQL and Redis of this machine; the tests start the broker themselves.
# tests/infra checks the manifests with the tools venv's checkov and kubernetes-validate.
# The docs site is built first: the AsyncAPI test validates with its parser.
test: $(STAMP) $(EXPLORER_STAMP) $(TOOLS_STAMP) lint typecheck architecture docs-build
	$(BIN)/pytest
	$(MAKE) web-test

# The web app: npm ci when the lock changed, generated types current, lint,
# types, Jest, one production build and its size, Playwright in Debian's chromium
# against a real `haunted dev` (see docs/web.md).
web-test: $(STAMP)
	web/scripts/web-test.sh

# The fault suite with the outages at full length (PostgreSQL and Redis down 30 s,
# the broker frozen 60 s); `make test` runs the same scenarios with short ones. With
# it, the other faults: a worker SIGKILLed mid-batch, the relay's lock connection
# killed, a gateway restarted under Socket.IO clients holding `since`.
faults: $(STAMP)
	$(BIN)/pytest -s --long-outages tests/faults \
		tests/services/analytics/test_crash.py \
		tests/events/test_outbox.py::test_a_relay_whose_lock_connection_dies_stops_publishing_and_one_other_leads \
		tests/gateway/test_many_gateways.py

# The docs site (site/): docs/ rendered, plus the reference generated from the code.
SITE := site
SITE_MODULES := $(SITE)/node_modules/.package-lock.json

$(SITE_MODULES): $(SITE)/package-lock.json
	cd $(SITE) && npm ci
	touch $@

docs-generate: $(STAMP)
	$(BIN)/haunted docs site --out $(SITE)/generated

# A production build that fails on a broken link, then a check that every setting,
# command, topic and root field has its page in what was built.
docs-build: docs-generate $(SITE_MODULES)
	cd $(SITE) && npm run build
	$(BIN)/python -m haunted.reference.check $(SITE)/build

# The site on http://127.0.0.1:3001, reloading as docs/ changes
# (run `make docs-generate` again after changing the code).
docs: docs-generate $(SITE_MODULES)
	cd $(SITE) && npm run start

# Every benchmark against its baseline, with modest sizes (each module takes
# larger ones: see bench/README.md), then one table of every goal. A benchmark
# that fails does not stop the others; the target fails at the end, after the
# table. The gateway's benchmarks drive wrk (installed here when missing).
BENCHMARKS = bench bench.auth bench.graphql_gateway bench.tracing \
	"bench.realtime --connections 2000" bench.analytics bench.analytics_queries \
	bench.revocation bench.billing bench.llm bench.flags bench.exports
bench: $(STAMP)
	command -v wrk >/dev/null 2>&1 || { apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }
	rm -f .bench-results.jsonl
	failed=""; for module in $(BENCHMARKS); do \
		$(BIN)/python -m $$module || failed="$$failed $${module%% *}"; \
	done; \
	$(BIN)/python -m bench.summary; \
	if [ -n "$$failed" ]; then echo "benchmarks that failed:$$failed"; exit 1; fi

# Re-resolve the locked versions from pyproject.toml's ranges.
lock:
	rm -rf /tmp/haunted-lock && $(PYTHON) -m venv /tmp/haunted-lock
	/tmp/haunted-lock/bin/pip install --quiet --upgrade pip
	/tmp/haunted-lock/bin/pip install --quiet -e '.[dev]'
	/tmp/haunted-lock/bin/pip freeze --exclude-editable > requirements.lock

# Re-resolve the tools venv's lock (checkov, kubernetes-validate).
tools-lock:
	rm -rf /tmp/haunted-tools-lock && $(PYTHON) -m venv /tmp/haunted-tools-lock
	/tmp/haunted-tools-lock/bin/pip install --quiet --upgrade pip
	/tmp/haunted-tools-lock/bin/pip install --quiet checkov kubernetes-validate
	/tmp/haunted-tools-lock/bin/pip freeze > infra/tools.lock

clean:
	rm -rf $(VENV) $(TOOLS) .haunted .pytest_cache .mypy_cache .ruff_cache
	rm -rf $(VENV) .haunted .pytest_cache .mypy_cache .ruff_cache web/node_modules web/.next
	rm -rf $(SITE)/node_modules $(SITE)/build $(SITE)/generated $(SITE)/.docusaurus
