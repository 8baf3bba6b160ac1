# Daily verbs. Each is a thin wrapper over the real command, which make prints as it runs it,
# so you learn the command. `make help` lists them.

VENV   ?= .venv
PYTHON := $(VENV)/bin/python
TLS    := -f docker-compose.yml -f docker-compose.tls.yml

# The test runner image (tests/Dockerfile): every tool the tiers need, on the same base image
# as the app. PYTHON_IMAGE as in docker-compose.yml; pass pytest arguments with ARGS=.
PYTHON_IMAGE  ?= python:3.13-slim
TEST_IMAGE    := flask-three-ways/test-runner:local
DOCKER_SOCKET ?= /var/run/docker.sock
ARGS          ?=

.PHONY: help up up-tls dev down logs test test-native lint report bench soak compare figures native certs venv

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

# Why each flag: the host's network, so the servers the tiers start on 127.0.0.1 and the
# stack's published ports are the host's; the host's Docker socket, so the e2e tier drives the
# host's engine; the checkout at its own path (and temp folders inside it), so the folders
# compose bind-mounts exist for the engine too; your uid, so what the tests write is yours;
# --init reaps the servers' orphans; a larger /dev/shm for Chromium.
test:  ## the whole suite (every tier) in a container: needs only Docker and make
	docker build --quiet --file tests/Dockerfile --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) \
	  --tag $(TEST_IMAGE) .
	@mkdir -p artifacts/tmp
	docker run --rm --init --network host --shm-size 1g \
	  --user "$$(id -u):$$(id -g)" --group-add "$$(stat -c %g $(DOCKER_SOCKET))" \
	  --volume $(DOCKER_SOCKET):/var/run/docker.sock \
	  --volume "$(CURDIR):$(CURDIR)" --workdir "$(CURDIR)" --env TMPDIR="$(CURDIR)/artifacts/tmp" \
	  --env CI --env PYTHON_IMAGE --env NGINX_IMAGE --env PROMETHEUS_IMAGE --env POSTGRES_IMAGE \
	  --env HEALTHCHECK_INTERVAL \
	  $(TEST_IMAGE) python -m pytest $(ARGS)

test-native: $(VENV)/installed  ## the same suite with the host's own tools (docs/testing.md)
	$(PYTHON) -m pytest $(ARGS)

lint: $(VENV)/installed  ## ruff, mypy (app, delay), shellcheck
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy app delay
	shellcheck .ci/run .ci/standin-images.sh tools/make-dev-cert.sh

report: $(VENV)/installed  ## the load-test report (~8 min) into artifacts/report/
	$(PYTHON) -m harness.report

bench: $(VENV)/installed  ## the benchmark (~2 h; --short for a smoke run) into artifacts/bench/
	$(PYTHON) -m harness.bench

soak: $(VENV)/installed  ## 10 min of mixed load with workers recycling: nothing may grow (artifacts/soak/)
	$(PYTHON) -m harness.soak $(ARGS)

# Your app under the three setups, and a recommendation (docs/your-app.md), e.g.
#   make compare APP='examples.notes:create_app()' PATHS='/notes /search?q=a'
compare: $(VENV)/installed  ## measure APP on PATHS three ways, recommend one, into artifacts/compare/
	$(PYTHON) -m harness.compare --app '$(APP)' $(foreach p,$(PATHS),--path '$(p)')

figures: $(VENV)/installed  ## adopt the last test run's figures, rewrite the docs' measured figures
	$(PYTHON) -m tools.figures --adopt

native: $(VENV)/installed  ## nginx + the three Gunicorn setups without Docker (ARGS=--with-services: + PostgreSQL)
	$(PYTHON) -m tools.native_stack $(ARGS)

certs:  ## a self-signed development certificate in ./certs
	tools/make-dev-cert.sh certs

venv: $(VENV)/installed

# The test environment: a virtualenv with every pinned dependency, rebuilt when a
# requirements file changes.
$(VENV)/installed: requirements-dev.txt gunicorn_conf/requirements.txt app/requirements.txt examples/notes/requirements.txt loadtest/requirements.txt harness/requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@
