"""Secrets read from files: the operator, provider and read tokens.

Apart from the settings so that the CLI (``deploy/cli.py``, for
``BLUEGREEN_TOKEN_FILE``) and the provider read a token file the same way and
say the same when it is wrong; never echoing the token.
"""

from __future__ import annotations

from provider.errors import SettingsError


def secret(raw: str) -> str | None:
    """A secret as given: no spaces or control characters; empty is none."""
    if raw and (raw != raw.strip() or any(ord(c) < 33 for c in raw)):
        raise ValueError("must not contain spaces or control characters")
    return raw or None


#: The largest token file read; a token is a line, anything bigger is the wrong file.
MAX_TOKEN_FILE = 4096


def read_token_file(path: str, source: str, flag: str, env_name: str) -> str:
    """A token from its file: one line, trailing newline stripped; never echoed in errors.

    The CLI reads ``BLUEGREEN_TOKEN_FILE`` with it too, so both say the same.
    """
    where = f"token file {path!r} ({source}; flag {flag}, env {env_name})"
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_TOKEN_FILE + 1)
    except FileNotFoundError as exc:
        raise SettingsError(f"{where} does not exist") from exc
    except OSError as exc:
        raise SettingsError(f"cannot read {where}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_TOKEN_FILE:
        raise SettingsError(f"{where} is over {MAX_TOKEN_FILE} bytes; it should hold one token")
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{where} is not UTF-8 text") from exc
    if not text:
        raise SettingsError(f"{where} is empty; write the token into it")
    try:
        token = secret(text)
    except ValueError as exc:
        raise SettingsError(f"{where}: the token {exc} (besides the trailing newline)") from exc
    assert token is not None
    return token
