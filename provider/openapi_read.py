"""The read token in the OpenAPI document: who may read, and the status page's sign-in.

Applied to :data:`provider.openapi.SPEC` when that module loads, so the
document stays one object while this part lives beside the code it describes
(:mod:`provider.read_access`).
"""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
#: Open without --read-token; with it, the read token or the operator token as a bearer
#: header, or the status page's session cookie.
_READ: list[dict[str, list[str]]] = [{}, {"bearer": []}, {"readSession": []}]
#: The routes that show the services' state (healthcheck output included).
READ_ROUTES = ("/status", "/status/{service}", "/history", "/events", "/", "/ui/services")
_HTML = {"text/html": {"schema": {"type": "string"}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def add_read_access(spec: dict[str, Any]) -> None:
    """Declare the read security, the 401s, ``POST /ui/login`` and its script."""
    spec["components"]["securitySchemes"]["readSession"] = {
        "type": "apiKey",
        "in": "cookie",
        "name": "bluegreen_read",
        "description": "set by POST /ui/login; HttpOnly, SameSite=Strict, 12 hours",
    }
    unauthorized = _error("--read-token is set and the request carries no read access")
    for route in READ_ROUTES:
        operation = spec["paths"][route]["get"]
        operation["security"] = _READ
        if route == "/":
            operation["responses"]["401"] = {
                "description": "no read access: the sign-in form instead of the status",
                "content": _HTML,
            }
        else:
            operation["responses"]["401"] = unauthorized
    events = spec["paths"]["/events"]["get"]
    events["parameters"].append(
        {
            "name": "last_event_id",
            "in": "query",
            "required": False,
            "description": "as Last-Event-ID, for clients that cannot set headers (header wins)",
            "schema": {"type": "string"},
        }
    )
    spec["paths"]["/ui/login"] = {
        "post": {
            "summary": "The status page's sign-in: the read (or operator) token for a cookie",
            "description": (
                "Sets the HttpOnly session cookie `bluegreen_read` (12 hours). Without "
                "--read-token reading is open: 200 and no cookie."
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["token"],
                            "properties": {"token": {"type": "string"}},
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "signed in (expires: epoch seconds, null without a read token)",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["signed_in", "expires"],
                                "properties": {
                                    "signed_in": {"type": "boolean"},
                                    "expires": {"type": "integer", "nullable": True},
                                },
                            }
                        }
                    },
                },
                **{str(code): _error("error") for code in (400, 401, 413, 415)},
            },
        }
    }
    spec["paths"]["/ui/login.js"] = {
        "get": {
            "summary": "The sign-in form's script",
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/javascript": {"schema": {"type": "string"}}},
                }
            },
        }
    }
