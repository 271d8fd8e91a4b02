"""The YAML settings file of ``bluegreen serve`` (``--config`` / ``BLUEGREEN_CONFIG``).

Every value is read as the text written: YAML 1.1 would turn ``token: 0755``
into the number 493, ``token: 12:30`` into 750 and ``token: yes`` into true,
so a token (or a label prefix, a cookie name...) would silently differ from
what the operator wrote. The loader resolves no implicit type but null; each
setting's own parser then reads the text (``promote_after: 1.5`` still works,
``auto_promote: off`` too).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import yaml

from provider.errors import SettingsError

_NULL = "tag:yaml.org,2002:null"


class TextLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose plain scalars stay strings (except ``~``, ``null``, empty)."""


TextLoader.yaml_implicit_resolvers = {
    first: kept
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    if (kept := [(tag, regexp) for tag, regexp in resolvers if tag == _NULL])
}

#: Settings whose YAML value may be a list (joined with commas for their parser).
LISTS = frozenset({"entrypoints"})
#: Settings whose YAML value is structured and handed over as is.
STRUCTURED = frozenset({"webhooks"})


def read(path: str, known: Collection[str]) -> Mapping[str, Any]:
    """The file's settings: each a string (or ``""`` for null), the structured ones as read."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.load(fh, Loader=TextLoader)
    except OSError as exc:
        raise SettingsError(
            f"cannot read settings file {path} (--config / BLUEGREEN_CONFIG): {exc.strerror}; "
            "fix the path or the file's permissions"
        ) from exc
    except yaml.YAMLError as exc:
        where = " ".join(str(exc).split())
        raise SettingsError(f"settings file {path} is not valid YAML: {where}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SettingsError(f"settings file {path} must hold a mapping of setting: value")
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = str(key).replace("-", "_")
        if name not in known:
            raise SettingsError(
                f"settings file {path}: unknown setting {key!r}; known: {', '.join(sorted(known))}"
            )
        if name in STRUCTURED:
            out[name] = value
        elif name in LISTS and isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[name] = ",".join(value)
        elif isinstance(value, str) or value is None:
            out[name] = value or ""
        else:
            what = "a list" if isinstance(value, list) else "a mapping"
            raise SettingsError(
                f"settings file {path}: {key} must be one value, not {what}; "
                f'write it on one line, e.g. {key}: "..."'
            )
    return out
