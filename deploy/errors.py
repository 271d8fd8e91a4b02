"""What can go wrong on the operator's side, each with the exit code it maps to.

The command line catches :class:`CliError` in one place (``deploy/cli.py``),
prints ``bluegreen <command>: <message>`` and exits with ``exit_code``. Every
message says what to do next. The exit codes are part of the interface:

====  =========================================================================
code  meaning
====  =========================================================================
0     done
1     deploy or rollback failed (the active color was left serving), or init failed,
      or a file to write is a symbolic link the CLI refuses to follow
2     bad command line (unknown flag, malformed --url)
3     provider unreachable, or it answered something that is not the bluegreen API
4     token problem: missing, wrong, or the provider has none configured
5     unknown service
6     switch refused: the target color is not ready, or there is nothing to roll back to
7     compose problem: not installed, a compose command failed, service not in the file
130   interrupted (Ctrl-C or SIGTERM); the active color was left serving
====  =========================================================================
"""

from __future__ import annotations


class CliError(Exception):
    """Base of every error the command line reports; ``str()`` is the user's message."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CliError):
    """The command line itself is wrong."""

    exit_code = 2


class ProviderUnreachable(CliError):
    """No answer from the provider at the URL tried."""

    exit_code = 3

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the provider at {url}: {reason}. Is `bluegreen serve` running there? "
            "Point the CLI at it with --url or BLUEGREEN_URL."
        )
        self.url = url
        self.reason = reason


class ProviderProtocolError(CliError):
    """Something answered at the URL, but not the way the bluegreen API does."""

    exit_code = 3


class ApiError(CliError):
    """The provider answered with a JSON error ``{"error": code, "detail": ...}``."""

    exit_code = 3

    def __init__(self, message: str, *, status: int, code: str, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail


class TokenError(ApiError):
    """401 or 403: the token is missing or wrong, or the provider has none configured."""

    exit_code = 4


class TokenFileError(CliError):
    """The operator token's file is missing, unreadable, empty, or given with a token too."""

    exit_code = 4


class MissingToken(CliError):
    """The command must switch through the API and no token was given; nothing was changed."""

    exit_code = 4


class UnknownServiceError(ApiError):
    """404 for a service no container carries."""

    exit_code = 5


class SwitchRefusedError(ApiError):
    """409: the target color cannot take traffic (or there is no previous color)."""

    exit_code = 6


class NothingToRollBack(CliError):
    """The service has no previous color, or its containers are gone."""

    exit_code = 6


class ComposeError(CliError):
    """Docker Compose is missing, failed, or the file lacks the service."""

    exit_code = 7


class ComposeNotFound(ComposeError):
    """Neither ``docker compose`` (v2) nor ``docker-compose`` (v1) is installed."""


class ComposeFileProblem(ComposeError):
    """The compose file cannot do this deploy (no such service, fixed image); nothing created."""


class EngineUnreachable(ComposeError):
    """Compose (or the CLI) found no Docker engine where it looked: nothing was created."""


class ImageUnavailable(ComposeFileProblem):
    """``--image`` is neither on this host nor pullable: checked before anything changed."""


class RolloutFailed(CliError):
    """The new color did not become ready; it was stopped and the active color kept serving."""

    exit_code = 1


class Interrupted(CliError):
    """Ctrl-C or SIGTERM during a deploy or rollback."""

    exit_code = 130


class UnsafeFile(CliError):
    """A file to write is a symbolic link (or not a regular file) the CLI must not follow."""

    exit_code = 1


class InitError(CliError):
    """``bluegreen init`` cannot prepare the directory: no engine, no socket, unwritable."""

    exit_code = 1
