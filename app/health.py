"""Liveness and readiness, kept apart as orchestrators expect.

``/healthz`` answers as long as the worker can run Python at all: a failing liveness probe
means "restart me". ``/readyz`` answers 200 only once the app finished initialising: a failing
readiness probe means "don't send me traffic yet", without a restart.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from app import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


# How long readiness waits for a database connection: well inside the healthcheck's timeout.
DB_CHECK_SECONDS = 1.0


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    if not current_app.extensions.get("ready"):
        return jsonify(status="starting"), 503
    # With a database configured, ready means it answers too: an orchestrator stops sending
    # traffic while it is down, and liveness (/healthz) stays 200, so nobody restarts workers
    # for an outage a restart cannot fix.
    database = current_app.config.get("DATABASE")
    if database is not None and not db.reachable(database, DB_CHECK_SECONDS):
        return jsonify(status="not_ready", database="unreachable"), 503
    return jsonify(status="ready")
