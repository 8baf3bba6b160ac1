# Daily verbs, each a thin wrapper over the real command (printed as it runs).
#   make test     the whole suite: unit, integration (native nginx + Gunicorn), e2e (compose)
#   make up       docker compose up --build   (the stack; Ctrl-C stops it)
#   make native   nginx + the three Gunicorn setups on loopback, without Docker
#   make down     docker compose down

VENV   ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: test up down native venv

# The test environment: a virtualenv with every pinned dependency, rebuilt when a
# requirements file changes.
$(VENV)/installed: requirements-dev.txt app/requirements.txt loadtest/requirements*.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/installed

test: $(VENV)/installed
	$(PYTHON) -m pytest

up:
	docker compose up --build

down:
	docker compose down --remove-orphans

native: $(VENV)/installed
	$(PYTHON) -m tools.native_stack
