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


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable_ref(name: str) -> dict[str, Any]:
    # OpenAPI 3.0 ignores siblings of $ref, so "nullable" must live in an anyOf branch.
    return {"anyOf": [_ref(name), {"type": "object", "nullable": True, "enum": [None]}]}


_COLOR = {"type": "string", "enum": ["blue", "green"]}
_NULLABLE_COLOR = {**_COLOR, "enum": ["blue", "green", None], "nullable": True}

_SWITCH_RECORD: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["service", "from", "to", "reason", "actor", "at", "seq"],
    "properties": {
        "service": {"type": "string"},
        "from": _NULLABLE_COLOR,
        "to": _COLOR,
        "reason": {"type": "string"},
        "actor": {"type": "string"},
        "at": {"type": "number"},
        "seq": {"type": "integer"},
        "detail": {"type": "object", "description": "a canary step's or abort's figures"},
    },
}

_SWITCH_RESULT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["service", "active", "previous", "changed", "switch"],
    "properties": {
        "service": {"type": "string"},
        "active": _COLOR,
        "previous": _NULLABLE_COLOR,
        "changed": {"type": "boolean"},
        "switch": _nullable_ref("SwitchRecord"),
    },
}

_MARK: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "since", "reason"],
    "properties": {
        "kind": {"type": "string", "enum": ["rejected", "retiring"]},
        "since": {"type": "number", "description": "Docker daemon clock"},
        "reason": {"type": "string"},
    },
}

_MARKS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "colors no automatic switch targets, until a new generation",
    "properties": {"blue": _ref("ColorMark"), "green": _ref("ColorMark")},
}

_RETIRE_RESULT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["service", "color", "active", "marks"],
    "properties": {
        "service": {"type": "string"},
        "color": _COLOR,
        "active": _COLOR,
        "marks": _MARKS,
    },
}

_CONTAINER: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "name",
        "state",
        "health",
        "health_output",
        "address",
        "created",
        "routable",
        "problem",
    ],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "state": {"type": "string"},
        "health": {"type": "string", "enum": ["none", "starting", "healthy", "unhealthy"]},
        "health_output": {"type": "string"},
        "address": {"type": "string", "nullable": True},
        "created": {"type": "number"},
        "routable": {"type": "boolean"},
        "problem": {"type": "string", "nullable": True},
    },
}

_COLOR_STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["containers", "routable", "replicas", "ready"],
    "properties": {
        "containers": {"type": "array", "items": _ref("Container")},
        "routable": {"type": "integer", "minimum": 0},
        "replicas": {"type": "integer", "minimum": 1},
        "ready": {"type": "boolean"},
        "rule": {"type": "string", "nullable": True},
        "promote": {"type": "string", "nullable": True},
    },
}

_STEP_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["step", "weight", "verdict", "detail", "at", "figures"],
    "properties": {
        "step": {"type": "integer", "minimum": 0},
        "weight": {"type": "integer", "minimum": 0, "maximum": 100},
        "verdict": {
            "type": "string",
            "enum": ["pass", "pass_health_only", "extend", "breach", "not_ready", "no_figures"],
        },
        "detail": {"type": "string"},
        "at": {"type": "number"},
        "extensions": {"type": "integer", "minimum": 0, "description": "extensions when judged"},
        "figures": {
            "type": "object",
            "nullable": True,
            "properties": {
                "requests": {"type": "integer"},
                "errors": {"type": "integer"},
                "error_rate": {"type": "number"},
                "p99_ms": {"type": "number", "nullable": True},
            },
        },
    },
}

_CANARY: dict[str, Any] = {
    "type": "object",
    "required": [
        "color",
        "base",
        "phase",
        "steps",
        "step",
        "weight",
        "interval",
        "started",
        "step_started",
        "next_decision_at",
        "results",
        "warnings",
        "analysis",
    ],
    "properties": {
        "color": _COLOR,
        "base": _COLOR,
        "phase": {"type": "string", "enum": ["waiting", "running", "promoted", "aborted"]},
        "steps": {"type": "array", "items": {"type": "integer"}},
        "step": {"type": "integer", "minimum": 0},
        "weight": {"type": "integer", "minimum": 0, "maximum": 100},
        "interval": {"type": "number"},
        "max_error_rate": {"type": "number"},
        "max_p99_ms": {"type": "number", "nullable": True},
        "min_requests": {"type": "integer"},
        "started": {"type": "number"},
        "step_started": {"type": "number"},
        "extensions": {"type": "integer"},
        "next_decision_at": {"type": "number", "nullable": True},
        "results": {"type": "array", "items": _ref("CanaryStep")},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "ended": {"type": "number", "nullable": True},
        "reason": {"type": "string", "nullable": True},
        "created_after": {"type": "number", "nullable": True},
        "analysis": {"type": "string", "enum": ["traefik-metrics", "health-only"]},
    },
}

_CANARY_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["service", "canary"],
    "properties": {"service": {"type": "string"}, "active": _COLOR, "canary": _ref("Canary")},
}

_CANARY_REQUEST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["service"],
    "properties": {
        "service": {"type": "string", "minLength": 1},
        "color": _COLOR,
        "steps": {
            "type": "array",
            "minItems": 1,
            "maxItems": 20,
            "items": {"type": "integer", "minimum": 1, "maximum": 100},
            "description": "strictly increasing percentages; 100 is appended if missing",
        },
        "interval": {
            "oneOf": [
                {"type": "number", "minimum": 0.1, "maximum": 86400},
                {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)?$"},
            ],
            "description": "seconds, or a duration such as 60s, 2m, 500ms (default 60s)",
        },
        "max_error_rate": {"type": "number", "minimum": 0, "maximum": 1},
        "max_p99_ms": {"type": "number", "nullable": True, "exclusiveMinimum": True, "minimum": 0},
        "min_requests": {"type": "integer", "minimum": 0},
        "await_ready": {
            "type": "boolean",
            "description": "reserve before a deploy: start once new containers are ready",
        },
    },
}


def _canary_operation(summary: str, request: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": _BEARER,
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": {
                **_ok(_ref("CanaryResult")),
                **_errors(400, 401, 403, 404, 409, 413, 415, 500, 503),
            },
        }
    }


_SERVICE_ONLY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["service"],
    "properties": {"service": {"type": "string", "minLength": 1}},
}

#: The keys scripts and the CLI rely on (README documents each one).
_SERVICE_STATUS: dict[str, Any] = {
    "type": "object",
    "required": [
        "service",
        "active",
        "previous",
        "adopted",
        "colors",
        "last_switch",
        "marks",
        "pending_promotion",
        "errors",
        "warnings",
        "serving_last_good_config",
        "docker_connected",
    ],
    "properties": {
        "service": {"type": "string"},
        "active": _COLOR,
        "previous": _NULLABLE_COLOR,
        "adopted": {"type": "boolean"},
        "colors": {
            "type": "object",
            "required": ["blue", "green"],
            "properties": {"blue": _ref("ColorStatus"), "green": _ref("ColorStatus")},
        },
        "last_switch": _nullable_ref("SwitchRecord"),
        "marks": _MARKS,
        "pending_promotion": {"type": "object", "nullable": True},
        "errors": {"type": "array", "items": {"type": "string"}},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "serving_last_good_config": {"type": "boolean"},
        "docker_connected": {"type": "boolean"},
        "canary": _nullable_ref("Canary"),
    },
}

_DOCKER: dict[str, Any] = {
    "type": "object",
    "required": ["connected", "status", "error", "containers"],
    "properties": {
        "connected": {"type": "boolean"},
        "status": {"type": "string", "enum": ["connected", "disconnected"]},
        "error": {"type": "string", "nullable": True},
        "containers": {"type": "integer", "minimum": 0},
    },
}

_STATE_FILE: dict[str, Any] = {
    "type": "object",
    "description": (
        "whether the last state write (and, on Swarm, the last read of the shared "
        "store) succeeded (error: why not)"
    ),
    "required": ["ok", "error", "store", "version", "location"],
    "properties": {
        "ok": {"type": "boolean"},
        "error": {"type": "string", "nullable": True},
        "store": {"type": "string", "enum": ["file", "swarm"]},
        "version": {"type": "integer", "description": "state versions committed or followed"},
        "location": {"type": "string", "description": "the file, or the newest Swarm config"},
    },
}

_STATUS_ALL: dict[str, Any] = {
    "type": "object",
    "required": ["services", "docker", "synced", "unassigned_errors", "state_file"],
    "properties": {
        "services": {"type": "object", "additionalProperties": _ref("ServiceStatus")},
        "docker": _ref("Docker"),
        "synced": {"type": "boolean"},
        "unassigned_errors": {"type": "array", "items": {"type": "string"}},
        "state_file": _ref("StateFile"),
    },
}

_READY: dict[str, Any] = {
    "type": "object",
    "required": ["synced", "docker", "state_file"],
    "properties": {
        "synced": {"type": "boolean"},
        "docker": _ref("Docker"),
        "state_file": _ref("StateFile"),
    },
}

_TRAEFIK: dict[str, Any] = {
    "type": "object",
    "description": "Traefik dynamic configuration (http routers and services)",
    "additionalProperties": False,
    "properties": {
        "http": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "routers": {"type": "object", "additionalProperties": {"type": "object"}},
                "services": {"type": "object", "additionalProperties": {"type": "object"}},
            },
        }
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
                "description": (
                    "Always the full current body. A poll on a keep-alive connection that "
                    "was already sent this body is held until the body changes or --hold "
                    "seconds pass (the first poll on a connection is answered at once), "
                    "so Traefik's pollTimeout must exceed --hold."
                ),
                "responses": {**_ok(_TRAEFIK), **_errors(401, 503)},
            }
        },
        "/status": {
            "get": {
                "summary": "Status of every service",
                "responses": _ok(_ref("StatusAll")),
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
                "responses": {**_ok(_ref("ServiceStatus")), **_errors(404)},
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
                                    "color": {
                                        **_NULLABLE_COLOR,
                                        "description": "default (or null): the idle color",
                                    },
                                    "force": {"type": "boolean", "nullable": True},
                                    "reason": {
                                        "type": "string",
                                        "maxLength": 200,
                                        "nullable": True,
                                        "description": "printable text; default manual",
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    **_ok(_ref("SwitchResult")),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 500, 503),
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
                                    "color": {
                                        **_NULLABLE_COLOR,
                                        "description": "the previous color the caller expects; "
                                        "409 if it is another",
                                    },
                                    "force": {"type": "boolean", "nullable": True},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    **_ok(_ref("SwitchResult")),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 500, 503),
                },
            }
        },
        "/retire": {
            "post": {
                "summary": "Mark an idle color as being stopped: never switched to automatically",
                "security": _BEARER,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["service", "color"],
                                "properties": {
                                    "service": {"type": "string", "minLength": 1},
                                    "color": _COLOR,
                                },
                            }
                        }
                    },
                },
                "responses": {
                    **_ok(_ref("RetireResult")),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 500, 503),
                },
            }
        },
        "/canary": _canary_operation(
            "Start a weighted canary of the idle color, judged step by step", _CANARY_REQUEST
        ),
        "/canary/abort": _canary_operation(
            "Stop the running canary: weight 0 now, the color marked rejected", _SERVICE_ONLY
        ),
        "/canary/promote": _canary_operation(
            "Skip the remaining steps: switch to the canary color now", _SERVICE_ONLY
        ),
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
                    **_ok(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["history"],
                            "properties": {
                                "history": {"type": "array", "items": _ref("SwitchRecord")}
                            },
                        }
                    ),
                    **_errors(400),
                },
            }
        },
        "/auth": {
            "get": {
                "summary": "Check the operator token without changing anything",
                "security": _BEARER,
                "responses": {
                    **_ok(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["authorized"],
                            "properties": {"authorized": {"type": "boolean", "enum": [True]}},
                        }
                    ),
                    **_errors(401, 403),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "responses": _ok(
                    {
                        "type": "object",
                        "required": ["status"],
                        "properties": {"status": {"type": "string", "enum": ["alive"]}},
                    }
                ),
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the first Docker sync finished and state writes work",
                "responses": {
                    **_ok(_ref("Ready")),
                    "503": {
                        "description": "not synced yet, or the last state-file write failed",
                        "content": {"application/json": {"schema": _ref("Ready")}},
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
            "get": {
                "summary": "This document",
                "responses": _ok({"type": "object", "required": ["openapi", "paths"]}),
            }
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "additionalProperties": False,
                "required": ["error", "detail"],
                "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
            },
            "SwitchRecord": _SWITCH_RECORD,
            "SwitchResult": _SWITCH_RESULT,
            "ColorMark": _MARK,
            "RetireResult": _RETIRE_RESULT,
            "Container": _CONTAINER,
            "ColorStatus": _COLOR_STATUS,
            "ServiceStatus": _SERVICE_STATUS,
            "StatusAll": _STATUS_ALL,
            "Docker": _DOCKER,
            "StateFile": _STATE_FILE,
            "Ready": _READY,
            "Canary": _CANARY,
            "CanaryStep": _STEP_RESULT,
            "CanaryResult": _CANARY_RESULT,
        },
    },
}

# -- the operator's window: /events, the status page, the webhook body -----------

_EVENT: dict[str, Any] = {
    "type": "object",
    "description": (
        "One event: the data of a GET /events message (whose SSE event name is `event` and "
        "id is `id`) and the body POSTed to each webhook"
    ),
    "additionalProperties": False,
    "required": [
        "id",
        "event",
        "service",
        "from",
        "to",
        "reason",
        "actor",
        "at",
        "images",
        "detail",
    ],
    "properties": {
        "id": {"type": "string", "description": "<boot>-<n>: unique, increasing within a boot"},
        "event": {
            "type": "string",
            "enum": [
                "switch",
                "promotion",
                "rollback",
                "canary",
                "container",
                "docker",
                "label_error",
            ],
        },
        "service": {"type": "string", "nullable": True, "description": "null for docker"},
        "from": {"type": "string", "nullable": True, "description": "color, phase or state"},
        "to": {"type": "string", "nullable": True},
        "reason": {"type": "string", "nullable": True},
        "actor": {"type": "string", "nullable": True},
        "at": {"type": "number", "description": "POSIX seconds"},
        "images": {
            "type": "object",
            "description": "switch/rollback/promotion done: newest image of each color",
            "additionalProperties": {"type": "string", "nullable": True},
        },
        "detail": {
            "type": "object",
            "description": (
                "the kind's own fields: stage, waiting_for, due_at, error (promotion, rollback); "
                "seq, forced (switch); container, state, health, health_output (container); "
                "errors (label_error); error (docker)"
            ),
        },
    },
}

_HTML = {"text/html": {"schema": {"type": "string"}}}

SPEC["paths"].update(
    {
        "/events": {
            "get": {
                "summary": "Server-Sent Events: every event as it happens (read-only)",
                "description": (
                    "Each message: `id: <id>`, `event: <kind>`, `data: <Event JSON>`. Send "
                    "`Last-Event-ID` to resume from the ring buffer; when the events after it "
                    "are gone the stream starts with an `event: resync` message (re-read "
                    "/status). A `: ping` comment every --events-heartbeat seconds."
                ),
                "parameters": [
                    {
                        "name": "service",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1},
                    },
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "the stream (never ends on its own)",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 503),
                },
            }
        },
        "/": {
            "get": {
                "summary": "The status page (HTML; absent with --ui off)",
                "responses": {"200": {"description": "OK", "content": _HTML}},
            }
        },
        "/ui/services": {
            "get": {
                "summary": "The status page's services section (HTML fragment it reloads)",
                "responses": {"200": {"description": "OK", "content": _HTML}},
            }
        },
        "/ui/app.js": {
            "get": {
                "summary": "The status page's script",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/javascript": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/ui/style.css": {
            "get": {
                "summary": "The status page's style sheet",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"text/css": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }
)
SPEC["components"]["schemas"]["Event"] = _EVENT
#: OpenAPI 3.0 has no webhooks section: what each --webhook receives, as an extension.
SPEC["x-webhooks"] = {
    "event": {
        "post": {
            "summary": "One event, POSTed to every --webhook whose events filter matches",
            "parameters": [
                {
                    "name": "webhook-id",
                    "in": "header",
                    "required": True,
                    "description": "Standard Webhooks message id, derived from the event (the "
                    "same on every retry and, for a switch, every replica): deduplicate on it",
                    "schema": {"type": "string"},
                },
                {
                    "name": "webhook-timestamp",
                    "in": "header",
                    "required": True,
                    "description": "Unix seconds of this attempt (signed; bounds replays)",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                },
                {
                    "name": "webhook-signature",
                    "in": "header",
                    "required": False,
                    "description": "with a secret: v1,<base64 HMAC-SHA256 of "
                    '"{webhook-id}.{webhook-timestamp}.{body}">, as Standard Webhooks specifies',
                    "schema": {"type": "string", "pattern": "^v1,[A-Za-z0-9+/=]+$"},
                },
                {
                    "name": "X-Bluegreen-Signature",
                    "in": "header",
                    "required": False,
                    "deprecated": True,
                    "description": "sha256=<hex HMAC-SHA256 of the body> with a secret; "
                    "replaced by webhook-signature, removed in the next release",
                    "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
                },
                {
                    "name": "X-Bluegreen-Event",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                },
                {
                    "name": "X-Bluegreen-Delivery",
                    "in": "header",
                    "required": True,
                    "deprecated": True,
                    "description": "the event id (this process's; use webhook-id instead)",
                    "schema": {"type": "string"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("Event")}},
            },
            "responses": {"200": {"description": "any 2xx: delivered; else retried 3 times"}},
        }
    }
}

# The read token: security of the read routes and the page's sign-in (its own module).
from provider.openapi_read import add_read_access  # noqa: E402

add_read_access(SPEC)
