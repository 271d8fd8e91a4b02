"""The ``bluegreen`` command: ``serve`` runs the provider; the rest talk to its API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from provider import settings as provider_settings
from provider.errors import SettingsError, StateFileError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bluegreen", description="Safe blue/green deploys on a Docker host, through Traefik."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the provider that Traefik polls")
    provider_settings.add_arguments(serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        from provider.server import serve

        try:
            settings = provider_settings.load(args)
            serve(settings)
        except (SettingsError, StateFileError) as exc:
            print(f"bluegreen serve: {exc}", file=sys.stderr)
            return 2
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
