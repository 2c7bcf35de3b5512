# Twoway's two commands:
#   make run    the demo: SQLite, in-process Redis and worker, the Vonage sandbox
#   make test   the whole suite, browser tests included (PYTEST_ARGS='-k inbox' to narrow it)
# and `make lint` (ruff). Each creates .venv and installs the project on first use, and again
# only when pyproject.toml changes.

VENV := .venv
INSTALLED := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
PYTEST_ARGS ?=

.PHONY: run test lint

run: $(INSTALLED)
	$(VENV)/bin/python -m app.demo

test: $(INSTALLED)
	@$(ensure_chromium)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check

$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -e '.[test]'
	touch $@

# Browser tests use Debian's Chromium (Playwright's own browser download does not work here).
# As root, install it when missing; otherwise say how, and the browser tests skip (outside CI).
define ensure_chromium
if [ -z "$${CHROMIUM_PATH:-}" ] && [ ! -x $(CHROMIUM) ]; then \
  if [ "$$(id -u)" = 0 ]; then \
    echo "Installing Debian's chromium for the browser tests"; \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
  else \
    echo "No $(CHROMIUM): browser tests will be skipped (sudo apt-get install chromium)"; \
  fi; \
fi
endef
