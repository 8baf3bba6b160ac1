"""A small notes service: the example of *your own app* served three ways (docs/your-app.md).

Written the way an ordinary Flask app is, not for this project's configs: it knows nothing
of Gunicorn, gevent or nginx, and its only link to them is one setting,
``WSGI_APP=examples.notes:create_app()``. What makes it a fair test of those configs:

* a real embedded database: SQLite in one file, in WAL mode, shared by every worker
  process of a setup (a connection per request: sqlite3 connections must not cross threads);
* a real outbound HTTP call, with a pooled ``requests`` session, to a quote service the app
  starts itself (examples/notes/quotes.py);
* ``requests`` and ``ssl`` imported at module import: the classic gevent trap. It is
  harmless here because the gevent setup imports the app in each worker only after
  monkey-patching (``preload_app = False``, gunicorn_conf/base.py).
"""

from __future__ import annotations

import os
import sqlite3
import ssl  # noqa: F401 - imported at module import on purpose (see the docstring)
import tempfile
from typing import Any

import requests
from flask import Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from examples.notes import quotes

MAX_TEXT = 500  # characters in a note
MAX_QUERY = 100  # characters in a search
LISTED = 50  # notes a list or a search returns at most
SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


def create_app(database: str | None = None) -> Flask:
    """The app; its database file is ``database``, else $NOTES_DB, else one in the temp dir."""
    app = Flask(__name__)
    app.config["DATABASE"] = (
        database
        or os.environ.get("NOTES_DB")
        or os.path.join(tempfile.gettempdir(), "notes.sqlite3")
    )
    with connect(app.config["DATABASE"]) as db:
        db.execute(SCHEMA)
    app.teardown_appcontext(close_db)
    app.register_error_handler(HTTPException, json_error)

    @app.get("/healthz")
    def healthz():
        get_db().execute("SELECT 1").fetchone()
        return {"status": "ok"}

    @app.get("/notes")
    def list_notes():
        rows = get_db().execute(
            "SELECT id, text, created_at FROM notes ORDER BY id DESC LIMIT ?", (LISTED,)
        )
        return {"notes": [dict(row) for row in rows]}

    @app.post("/notes")
    def add_note():
        body = request.get_json(silent=True)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            return error(400, f'send JSON {{"text": "..."}}, 1 to {MAX_TEXT} characters')
        db = get_db()
        with db:
            cursor = db.execute("INSERT INTO notes (text) VALUES (?)", (text.strip(),))
        row = db.execute(
            "SELECT id, text, created_at FROM notes WHERE id = ?", (cursor.lastrowid,)
        ).fetchone()
        return dict(row), 201

    @app.get("/search")
    def search():
        query = request.args.get("q", "")
        if not query.strip() or len(query) > MAX_QUERY:
            return error(400, f"q is required, 1 to {MAX_QUERY} characters")
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = get_db().execute(
            "SELECT id, text, created_at FROM notes WHERE text LIKE ? ESCAPE '\\' "
            "ORDER BY id DESC LIMIT ?",
            (f"%{escaped}%", LISTED),
        )
        return {"q": query, "notes": [dict(row) for row in rows]}

    @app.get("/quote")
    def quote():
        try:
            answer = session().get(quotes.url(), timeout=5)
            answer.raise_for_status()
            return {"quote": answer.json()["quote"]}
        except (requests.RequestException, ValueError, KeyError) as failed:
            return error(503, f"the quote service did not answer: {type(failed).__name__}")

    return app


def connect(path: str) -> sqlite3.Connection:
    """A connection that waits for other writers instead of failing, in WAL mode (readers
    never block the one writer, across processes)."""
    db = sqlite3.connect(path, timeout=5)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    return db


def get_db() -> sqlite3.Connection:
    """This request's connection, opened on first use (``g`` is per request, so per thread
    or greenlet)."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


_session: requests.Session | None = None


def session() -> requests.Session:
    """One pooled session per process (requests' sessions are shared across threads in
    practice; the pool is sized for a gthread worker's threads)."""
    global _session
    if _session is None:
        _session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=64)
        _session.mount("http://", adapter)
    return _session


def error(status: int, message: str):
    return jsonify(error=message, status=status), status


def json_error(exc: HTTPException) -> Any:
    return error(exc.code or 500, exc.description or exc.name)
