"""Liveness and readiness, kept apart as orchestrators expect.

``/healthz`` answers as long as the worker can run Python at all: a failing liveness probe
means "restart me". ``/readyz`` answers 200 only once the app finished initialising: a failing
readiness probe means "don't send me traffic yet", without a restart.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    if not current_app.extensions.get("ready"):
        return jsonify(status="starting"), 503
    return jsonify(status="ready")
