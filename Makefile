# Daily verbs. Each is a thin wrapper over the real command, which make prints as it runs it,
# so you learn the command. `make help` lists them.

VENV   ?= .venv
PYTHON := $(VENV)/bin/python
TLS    := -f docker-compose.yml -f docker-compose.tls.yml

.PHONY: help up up-tls dev down logs test lint report bench native certs venv

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

up:  ## the whole stack: http://127.0.0.1:8080, Locust on :8089 (Ctrl-C stops)
	docker compose up --build

up-tls:  ## the stack with HTTPS on https://127.0.0.1:8443 (makes a dev certificate first)
	test -f certs/tls.crt || tools/make-dev-cert.sh certs
	TLS_CERT_DIR=./certs docker compose $(TLS) up --build

dev:  ## Flask's dev server with live reload and the debugger on http://127.0.0.1:5000
	docker compose --profile dev up --build app-dev

down:  ## stop and remove every container and network of the stack
	docker compose --profile dev down --remove-orphans

logs:  ## follow every service's log
	docker compose logs --follow

test: $(VENV)/installed  ## the whole suite: unit, integration, browser, e2e
	$(PYTHON) -m pytest

lint: $(VENV)/installed  ## ruff, mypy (app), shellcheck
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy app
	shellcheck .ci/run .ci/standin-images.sh tools/make-dev-cert.sh

report: $(VENV)/installed  ## the load-test report (~8 min) into artifacts/report/
	$(PYTHON) -m loadtest.report

bench: $(VENV)/installed  ## the benchmark (~35 min; --short for a smoke run) into artifacts/bench/
	$(PYTHON) -m loadtest.bench

native: $(VENV)/installed  ## nginx + the three Gunicorn setups without Docker
	$(PYTHON) -m tools.native_stack

certs:  ## a self-signed development certificate in ./certs
	tools/make-dev-cert.sh certs

venv: $(VENV)/installed

# The test environment: a virtualenv with every pinned dependency, rebuilt when a
# requirements file changes.
$(VENV)/installed: requirements-dev.txt app/requirements.txt loadtest/requirements*.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@
