"""Query-string parsing that turns every bad value into a 400 saying what is allowed."""

from __future__ import annotations

import re

from flask import request

from app.errors import ApiError


def _single_value(name: str) -> str | None:
    values = request.args.getlist(name)
    if len(values) > 1:
        raise ApiError(
            400,
            "invalid_parameter",
            f"Give '{name}' once, not {len(values)} times.",
            parameter=name,
        )
    return values[0] if values else None


def int_arg(name: str, *, default: int, minimum: int, maximum: int) -> int:
    """An integer query parameter within [minimum, maximum]; missing means ``default``."""
    raw = _single_value(name)
    if raw is None:
        return default
    # Plain decimal digits only: no signs, spaces, underscores, floats or 'NaN'.
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not minimum <= int(raw) <= maximum:
        raise ApiError(
            400,
            "invalid_parameter",
            f"'{name}' must be an integer from {minimum} to {maximum}; got {raw[:40]!r}.",
            parameter=name,
            minimum=minimum,
            maximum=maximum,
        )
    return int(raw)


def token_arg(name: str, *, max_length: int = 64) -> str:
    """A required short token of letters, digits, '-' and '_'."""
    raw = _single_value(name)
    if raw is None or not re.fullmatch(rf"[A-Za-z0-9_-]{{1,{max_length}}}", raw):
        shown = "nothing" if raw is None else repr(raw[:40])
        raise ApiError(
            400,
            "invalid_parameter",
            f"'{name}' must be 1 to {max_length} letters, digits, '-' or '_'; got {shown}.",
            parameter=name,
        )
    return raw


def choice_arg(name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``; missing means the first."""
    raw = _single_value(name)
    if raw is None:
        return choices[0]
    if raw not in choices:
        raise ApiError(
            400,
            "invalid_parameter",
            f"'{name}' must be one of {', '.join(choices)}; got {raw[:40]!r}.",
            parameter=name,
            choices=list(choices),
        )
    return raw
