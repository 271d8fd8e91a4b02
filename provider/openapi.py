"""The OpenAPI 3.0 description served at ``/openapi.json``.

Kept beside the handlers' behaviour by a test that checks every route and
status code the server answers against this document.
"""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(code): {
            "description": "error",
            "content": {"application/json": {"schema": _ERROR}},
        }
        for code in codes
    }


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {
        "200": {"description": description, "content": {"application/json": {"schema": schema}}}
    }


_SWITCH_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["service", "active", "previous", "changed", "switch"],
    "properties": {
        "service": {"type": "string"},
        "active": {"type": "string", "enum": ["blue", "green"]},
        "previous": {"type": "string", "enum": ["blue", "green"], "nullable": True},
        "changed": {"type": "boolean"},
        "switch": {"type": "object", "nullable": True},
    },
}

_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "traefik-bluegreen provider", "version": "0.1.0"},
    "paths": {
        "/traefik": {
            "get": {
                "summary": "Traefik dynamic configuration (HTTP provider endpoint)",
                "responses": {**_ok({"type": "object"}), **_errors(401, 503)},
            }
        },
        "/status": {
            "get": {
                "summary": "Status of every service",
                "responses": _ok({"type": "object", "required": ["services"]}),
            }
        },
        "/status/{service}": {
            "get": {
                "summary": "Status of one service",
                "parameters": [
                    {
                        "name": "service",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {**_ok({"type": "object"}), **_errors(404)},
            }
        },
        "/switch": {
            "post": {
                "summary": "Switch a service's active color",
                "security": _BEARER,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["service"],
                                "properties": {
                                    "service": {"type": "string", "minLength": 1},
                                    "color": {"type": "string", "enum": ["blue", "green"]},
                                    "force": {"type": "boolean"},
                                    "reason": {"type": "string", "maxLength": 200},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    **_ok(_SWITCH_RESULT),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 500),
                },
            }
        },
        "/rollback": {
            "post": {
                "summary": "Switch a service back to its previous color",
                "security": _BEARER,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["service"],
                                "properties": {
                                    "service": {"type": "string", "minLength": 1},
                                    "force": {"type": "boolean"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    **_ok(_SWITCH_RESULT),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 500),
                },
            }
        },
        "/history": {
            "get": {
                "summary": "The audit trail of switches",
                "parameters": [
                    {
                        "name": "service",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    **_ok({"type": "object", "required": ["history"]}),
                    **_errors(400),
                },
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": _ok({"type": "object"})}},
        "/readyz": {
            "get": {
                "summary": "Readiness: the first Docker sync finished",
                "responses": {
                    **_ok({"type": "object"}),
                    "503": {
                        "description": "not synced yet",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {"summary": "This document", "responses": _ok({"type": "object"})}
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "detail"],
                "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
            }
        },
    },
}
