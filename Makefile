# The two commands a newcomer needs: `make run` and `make test`. See README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup install run test lint bench clean-var

# First time only (and again when requirements.txt changes): one progress line per step.
$(STAMP): requirements.txt pyproject.toml
	@scripts/install.sh $(VENV)
	@touch $(STAMP)

install: $(STAMP)

## setup: install when needed, migrate, seed roles, prompts, demo users, default models and examples (idempotent)
setup: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py compilemessages_py
	$(PY) manage.py setup_demo

## run: setup, then Redis (if none runs), the model service, a worker, beat and the web server
run: setup
	$(PY) scripts/run_suite.py

## test: install when needed, then the whole suite (starts Redis, the model service and workers itself).
## The browser tests need Chromium; without one the whole suite stops here, unless SKIP_BROWSER_TESTS=1.
CHROMIUM_PATH ?= /usr/bin/chromium
export CHROMIUM_PATH
test: install
	@if [ -z "$(PYTEST_ARGS)" ] && [ "$${SKIP_BROWSER_TESTS:-0}" != 1 ] && [ ! -x "$(CHROMIUM_PATH)" ]; then \
	  echo "make test: no Chromium at $(CHROMIUM_PATH), which the browser tests need."; \
	  echo "  Install it (Debian/Ubuntu: apt-get install chromium; or CHROMIUM_PATH=/path/to/chromium),"; \
	  echo "  or skip the browser tests on purpose: SKIP_BROWSER_TESTS=1 make test"; \
	  exit 1; fi
	$(PY) manage.py compilemessages_py
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) benchmarks/model_service_bench.py

clean-var:
	rm -rf var/
