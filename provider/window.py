"""The operator's window on ``app``: ``GET /events``, the status page, webhooks.

One call from :func:`provider.api.create_app`, so the API module only knows
that the window exists; each part lives in its own module.
"""

from __future__ import annotations

from aiohttp import web

from provider import sse, ui, webhooks
from provider.controller import Controller


def setup(app: web.Application, controller: Controller) -> None:
    """Add the event stream, the status page (unless ``--ui off``) and the webhooks."""
    settings = controller.settings
    sse.setup(
        app,
        controller.events,
        max_clients=settings.events_max_clients,
        heartbeat=settings.events_heartbeat,
    )
    if settings.ui:
        ui.setup(app, controller)
    if settings.webhooks:
        dispatcher = webhooks.WebhookDispatcher(
            settings.webhooks,
            secret=settings.webhook_secret,
            metrics=controller.metrics,
            timeout=settings.webhook_timeout,
            queue_size=settings.webhook_queue,
            backoff=webhooks.BACKOFF_FIRST_S,
        )
        webhooks.setup(app, controller.events, dispatcher)
