"""The operators' request bodies: one JSON object, known fields, types and numbers checked.

Every ``POST`` of the API reads its body here, so each refusal is the same
400 with the field named, before any handler looks at a value. Numbers are
checked as the JSON parser returns them: Python's ``json`` reads ``NaN``,
``Infinity`` and integers of any size, and ``float()`` of ``10**400`` raises
``OverflowError``, so those never reach the handlers.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from provider.core.model import Color
from provider.errors import BadRequest, UnsupportedMediaType


async def json_body(
    request: web.Request, allowed: dict[str, type | tuple[type, ...]]
) -> dict[str, Any]:
    """The body as a JSON object whose fields are among ``allowed``, of those types."""
    ctype = request.headers.get("Content-Type", "")
    if request.can_read_body and ctype.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("send the body as Content-Type: application/json")
    raw = await request.read()
    if not raw:
        raise BadRequest("the request needs a JSON object body")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {str(exc)[:200]}") from exc
    except RecursionError as exc:  # e.g. "[[[[..." nested deeper than the parser's stack
        raise BadRequest("body is nested too deeply") from exc
    if not isinstance(doc, dict):
        raise BadRequest("body must be a JSON object")
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(k[:40] for k in unknown[:5])}")
    for key, types in allowed.items():
        if key in doc and doc[key] is not None and not isinstance(doc[key], types):
            raise BadRequest(f"field {key!r} has the wrong type")
        if key in doc:
            _check_numbers(key, doc[key], types)
        if isinstance(doc.get(key), str) and not doc[key].isprintable():
            # Lone surrogates ("\ud800") cannot be logged or stored as UTF-8, and
            # control characters would forge lines in a console log.
            raise BadRequest(f"field {key!r} must be printable Unicode text")
    return doc


#: The largest whole number a field may hold: JSON's safe integers (what a JavaScript
#: client can send exactly). Beyond, ``float()`` of a huge int raises OverflowError.
MAX_JSON_INT = 2**53


def _check_numbers(key: str, value: object, types: type | tuple[type, ...]) -> None:
    """Refuse what no field means: true/false where a number goes, NaN and Infinity
    (Python's json reads them), and integers past 2**53, also inside lists."""
    accepted = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in accepted:
        raise BadRequest(f"field {key!r} must not be true or false")
    pending = [value]
    while pending:  # iterative: the body may nest as deep as json.loads allowed
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise BadRequest(f"field {key!r} must be a finite number (not NaN or Infinity)")
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_JSON_INT:
            raise BadRequest(f"field {key!r} is out of range: at most 2**53 in magnitude")
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())


def service_field(doc: dict[str, Any]) -> str:
    service = doc.get("service")
    if not isinstance(service, str) or not service:
        raise BadRequest("field 'service' (a non-empty string) is required")
    return service


def color_field(doc: dict[str, Any]) -> Color | None:
    raw = doc.get("color")
    if raw is None:
        return None
    try:
        return Color(raw)
    except ValueError as exc:
        raise BadRequest("field 'color' must be 'blue' or 'green'") from exc
