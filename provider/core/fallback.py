"""The asset fallback: a 404 on listed path prefixes is answered by the previous color.

A page loaded from the old version asks for its content-hashed assets after the
switch; the new version does not have them and answers 404. With the label
``bluegreen.fallback=/assets/,/packs/`` on the active color, the provider renders:

- a router ``<service>-fallback`` for the main rule restricted to those prefixes
  (its rule is longer than the main router's, so it wins by Traefik's default
  priority; preview routers still win over it), with the service's own
  middlewares and then ours;
- a middleware ``<service>-fallback`` of Traefik's ``errors`` kind: a 404 from the
  active color is replaced by the answer of the previous color's service.

Only while the previous color has servers: once it is stopped (or has no routable
container) both are gone, so the fallback never points at a color that cannot
answer. Not during a canary (both colors serve then).

Traefik 3.7's ``errors`` middleware sends the fallback request to a fixed path, its
``query``, with three placeholders (``pkg/middlewares/customerrors``): ``{status}``,
``{originalStatus}`` and ``{url}`` (the original URL, query-escaped). There is no
path placeholder, so the original path does *not* reach the old color as a path:
the old color gets ``GET /_bluegreen/fallback?url=<original URL>`` and must answer
it with the asset at that URL's path (the app-side recipe, docs/draining.md).

The middleware answers with the status it caught, whatever the fallback service
said (its ``codeModifier`` enforces it), so a found asset would still be a 404 a
browser refuses to run: ``statusRewrites`` makes it 200. The price: a path that
neither color has answers 200 (with the old color's not-found body) while the
fallback is on. Traefik's other way, ``nginxHeaders`` (the service's own status),
is not accepted from the HTTP provider (``yaml:"-"``).
"""

from __future__ import annotations

from collections.abc import Mapping

from provider.core.dynamic import Middleware, Router
from provider.core.labels import RouteSpec
from provider.core.model import Color

#: The path and query the previous color is asked for (Traefik fills in ``{url}``).
FALLBACK_QUERY = "/_bluegreen/fallback?url={url}"


def fallback_name(service: str) -> str:
    """The router and the middleware of one service's fallback."""
    return f"{service}-fallback"


def fallback_rule(rule: str, prefixes: tuple[str, ...]) -> str:
    """The main rule, restricted to the fallback's path prefixes."""
    paths = " || ".join(f"PathPrefix(`{prefix}`)" for prefix in prefixes)
    return f"({rule}) && ({paths})"


def render_fallback(
    service: str,
    spec: RouteSpec,
    active: Color,
    previous_urls: tuple[str, ...],
    weights: Mapping[Color, int] | None,
) -> tuple[dict[str, Router], dict[str, Middleware]]:
    """(routers, middlewares) of the fallback; both empty when it is off or cannot answer."""
    canary = len([w for w in (weights or {}).values() if w > 0]) >= 2
    if not spec.fallback or not previous_urls or canary:
        return {}, {}
    name = fallback_name(service)
    router: Router = {
        "rule": fallback_rule(spec.rule, spec.fallback),
        "service": service,
        "entryPoints": list(spec.entrypoints),
        "middlewares": [*spec.middlewares, name],
    }
    if spec.tls:
        router["tls"] = {"certResolver": spec.certresolver} if spec.certresolver else {}
    middleware: Middleware = {
        "errors": {
            "status": ["404"],
            "statusRewrites": {"404": 200},
            "service": f"{service}-{active.other}",
            "query": FALLBACK_QUERY,
        }
    }
    return {name: router}, {name: middleware}
