"""``bluegreen import traefik-file FILE``: read the file, print what replaces it.

The labels (or, ``--format compose-override``, a compose override file) go to
stdout, closed by the Traefik flags as comments, so ``> docker-compose.override.yml``
keeps a valid file; what is not carried over, left to the file provider, or not
imported goes to stderr, each with where it is in the file. Exit 0 when at least one
service was imported, 1 when none could be (the reasons printed), 2 when the file
cannot be read as YAML or TOML. Nothing is written anywhere but the two streams.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from deploy import color_layout
from deploy.errors import CliError, UsageError
from deploy.import_output import (
    DEFAULT_ENDPOINT,
    NeedsTemplate,
    commented,
    labels_text,
    notes,
    override_yaml,
    traefik_flags,
)
from deploy.import_traefik import Import, read_config

FORMATS = ("labels", "compose-override")


class NothingImported(CliError):
    """No router of the file switches between two colors the import understands."""

    exit_code = 1


def add_arguments(sub: Any, epilog: str) -> None:
    """``import traefik-file``: registered by ``deploy/parser.py``."""
    command = sub.add_parser(
        "import",
        help="print the bluegreen labels that replace a blue/green script's routing",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = command.add_subparsers(dest="import_kind", required=True, metavar="KIND")
    traefik = kinds.add_parser(
        "traefik-file", help="a Traefik file-provider config (YAML or TOML) a script rewrites"
    )
    traefik.add_argument("file", help="e.g. dynamic-config.yml")
    traefik.add_argument(
        "--format",
        choices=FORMATS,
        default="labels",
        help="labels as key=value (default), or a compose override file to redirect into "
        "docker-compose.override.yml",
    )
    traefik.add_argument(
        "--compose-service",
        default=None,
        metavar="TEMPLATE",
        help="name each color's compose service (e.g. '{service}-{color}'); default: the "
        "host of its server URL",
    )
    traefik.add_argument("--label-prefix", default="bluegreen", help="the provider's prefix")
    traefik.add_argument(
        "--endpoint",
        default=DEFAULT_ENDPOINT,
        help=f"the provider's /traefik URL as Traefik reaches it (default {DEFAULT_ENDPOINT})",
    )


def load(path: Path) -> Any:
    """The parsed file: TOML for ``.toml``, else YAML (:class:`UsageError` when unreadable)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        if path.suffix == ".toml":
            return tomllib.loads(raw.decode("utf-8"))
        return yaml.safe_load(raw)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        what = "TOML" if path.suffix == ".toml" else "YAML"
        detail = " ".join(str(exc).split())
        raise UsageError(f"{path} is not {what}: {detail}") from exc


def run(args: argparse.Namespace) -> int:
    """Import, print, and say why whatever was not imported was not."""
    if args.compose_service is not None:
        color_layout.check("--compose-service", args.compose_service)
    path = Path(args.file)
    result = read_config(load(path))
    for line in notes(result, args.compose_service):
        print(f"note: {line}", file=sys.stderr)
    for problem in result.problems:
        print(f"not imported: {problem}", file=sys.stderr)
    if not result.services:
        raise NothingImported(_nothing(path, result))
    try:
        if args.format == "compose-override":
            artifact = override_yaml(result, args.label_prefix, args.compose_service)
        else:
            artifact = labels_text(result, args.label_prefix, args.compose_service)
    except NeedsTemplate as exc:
        raise UsageError(str(exc)) from exc
    sys.stdout.write(artifact + "\n")
    sys.stdout.write(commented(traefik_flags(result, args.endpoint, str(path))))
    names = ", ".join(s.name for s in result.services)
    print(f"imported {len(result.services)} service(s) from {path}: {names}", file=sys.stderr)
    return 0


def _nothing(path: Path, result: Import) -> str:
    if result.problems:
        return f"nothing imported from {path}: every blue/green router has a problem (above)"
    return (
        f"nothing imported from {path}: no router points at a service named <name>-blue or "
        "<name>-green, at a weighted service over two such, or at servers whose host names a "
        "color"
    )
