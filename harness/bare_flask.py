"""A minimal Flask app: what Flask itself costs per request, with none of this project's
additions (request ids, metrics, logs, ProxyFix, JSON errors). The benchmark serves it under
each shipped setup's config, next to the real app, to measure what those additions cost.

    gunicorn -c python:gunicorn_conf.gthread harness.bare_flask:app
"""

from __future__ import annotations

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue

app = Flask(__name__)


@app.get("/api/whoami")
def hello() -> ResponseReturnValue:
    return jsonify(hello="world")


@app.get("/readyz")
def ready() -> ResponseReturnValue:
    return jsonify(status="ready")
