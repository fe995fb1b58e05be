# The two commands: `make run` (the whole service on SQLite, console channel) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# uv installs exactly what uv.lock says; the same pin is in pyproject.toml's dev group and in
# deploy/Dockerfile. A fresh clone needs only python3: pip brings uv into the venv first.
UV_VERSION := 0.13.9
UV := UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON_DOWNLOADS=never $(BIN)/uv

.PHONY: run test lint bench pg-up chromium axe wrk i18n image-check clean

# --locked: a pyproject.toml whose lock is stale stops here (`$(BIN)/uv lock`, then commit both).
$(STAMP): pyproject.toml uv.lock
	test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet uv==$(UV_VERSION); }
	$(UV) sync --locked --quiet
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/aftercare db upgrade
	$(BIN)/aftercare demo
	@echo "Web app on http://127.0.0.1:5000 ; the worker prints each outgoing SMS/email here. Ctrl-C stops both."
	@$(BIN)/aftercare worker & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/aftercare run --host 127.0.0.1 --port 5000

pg-up:
	bash scripts/pg-up.sh

# Browser tests drive Debian's Chromium (never `playwright install`: it downloads a browser).
chromium:
	@test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# The accessibility test injects npm's axe-core (package.json pins it; package-lock.json its hash).
axe:
	@test -f node_modules/axe-core/axe.min.js || { command -v npm >/dev/null || \
	  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y npm); npm ci --no-audit --no-fund; }

test: $(STAMP) pg-up chromium axe
	$(BIN)/ruff check service jobs tests bench
	$(BIN)/pytest

# The HTTP benchmark's load generator is Debian's wrk.
wrk:
	@command -v wrk >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk)

# Every benchmark (about 55 minutes); one: `$(BIN)/python -m bench wave`, smaller: see --help.
bench: $(STAMP) pg-up wrk
	$(BIN)/pytest -m bench tests/test_bench.py
	$(BIN)/python -m bench

# After changing a translatable string (templates/web, or _() / lazy_gettext() / N_() in service/):
# extract, update, then translate in messages.po and run it again to compile.
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k Nn_:1,2 -o service/translations/messages.pot templates/web service
	$(BIN)/pybabel update -i service/translations/messages.pot -d service/translations
	$(BIN)/pybabel compile -d service/translations

# Builds deploy/Dockerfile and runs it for real with Docker or Podman (not part of `make test`):
# see README.md, "Deploy", and scripts/image-check.sh for what it checks.
image-check: $(STAMP)
	bash scripts/image-check.sh

clean:
	rm -rf $(VENV) var .pytest_cache
