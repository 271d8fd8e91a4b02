"""Which regular expressions a rule's ``*Regexp`` matchers may carry.

Traefik compiles them with Go's RE2; the tests (and anyone reading a label)
read them with Python's ``re``. :func:`regex_problem` accepts only the part of
the language both read alike. Split out of ``rule_syntax`` (which re-exports it).

Pure: no I/O, no asyncio.
"""

from __future__ import annotations

import re
import warnings

_HEX = frozenset("0123456789abcdefABCDEF")
#: Escapes Go's RE2 and Python's ``re`` both read the same way, outside and inside ``[...]``.
_RE_ESCAPES = frozenset("afnrtvdDsSwWbBA0")
_RE_CLASS_ESCAPES = frozenset("afnrtvdDsSwW0")
_RE_GROUP = re.compile(r"\(\?(?::|P<[A-Za-z0-9_]+>|[ims]+(?:-[ims]+)?[:)]|-[ims]+[:)])")
_RE_BRACES = re.compile(r"\{(\d*)(?:(,)(\d*))?\}")
_MAX_REPEAT = 1000
_MAX_REPEAT_PRODUCT = 10_000


def regex_problem(pattern: str) -> str | None:
    """Refuse a regular expression unless Go's RE2 and Python's ``re`` both compile it.

    Conservative by design: escapes and groups outside the common subset
    (backreferences, lookaround, possessive or atomic forms, ``\\z``, ``\\p``),
    repeat counts over Go's 1000, and nested ``[`` in classes are refused.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            re.compile(pattern)
        except (re.error, FutureWarning, DeprecationWarning, RecursionError) as exc:
            return f"is not a valid regular expression ({str(exc)[:80]})"
    scan = _Scan(pattern)
    while scan.i < len(pattern):
        problem = scan.step()
        if problem:
            return problem
    return None


class _Scan:
    """A left-to-right walk of a pattern Python compiled, refusing what Go reads otherwise."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.i = 0
        self.in_class = False
        self.repeated = False  # the previous token was a repeat operator (possibly lazy)
        self.lazy = False
        self.product = 1

    def step(self) -> str | None:
        """Read the token at ``i``: move past it, or say what is wrong with it."""
        pattern, i = self.pattern, self.i
        ch = pattern[i]
        if ch == "\\":
            return self.escape()
        if self.in_class:
            return self.class_member(ch)
        if ch == "[":
            self.open_class()
            return None
        if ch == "(" and pattern[i + 1 : i + 2] == "?":
            return self.group()
        braces = _RE_BRACES.match(pattern, i) if ch == "{" else None
        if ch in "*+?" or (braces and braces.group(1)):
            return self.repeat(ch, braces)
        self.repeated = False
        self.lazy = False
        self.i += 1
        return None

    def escape(self) -> str | None:
        pattern, i = self.pattern, self.i
        esc = pattern[i + 1 : i + 2]
        allowed = _RE_CLASS_ESCAPES if self.in_class else _RE_ESCAPES
        if esc == "x" and len(pattern[i + 2 : i + 4]) == 2 and set(pattern[i + 2 : i + 4]) <= _HEX:
            self.i += 4
        elif (esc.isascii() and not esc.isalnum()) or esc in allowed:
            self.i += 2
        else:
            return f"uses the escape \\{esc}, which Go and Python read differently"
        self.repeated = False
        return None

    def class_member(self, ch: str) -> str | None:
        if ch == "[":
            return "has '[' inside a character class"
        if ch == "]":
            self.in_class = False
        self.i += 1
        return None

    def open_class(self) -> None:
        self.in_class = True
        self.i += 1
        # A leading ']' (or '^]') is a literal in both dialects.
        if self.pattern[self.i : self.i + 1] == "^":
            self.i += 1
        if self.pattern[self.i : self.i + 1] == "]":
            self.i += 1
        self.repeated = False

    def group(self) -> str | None:
        if not _RE_GROUP.match(self.pattern, self.i):
            return "uses a group form Go does not support"
        self.i += 2
        self.repeated = False
        return None

    def repeat(self, ch: str, braces: re.Match[str] | None) -> str | None:
        if self.repeated and not (ch == "?" and not self.lazy):
            return "has a repeat of a repeat, which Go refuses"
        self.lazy = self.repeated and ch == "?"
        self.repeated = True
        if braces:
            counts = [int(c) for c in (braces.group(1), braces.group(3)) if c]
            if max(counts) > _MAX_REPEAT:
                return f"repeats more than {_MAX_REPEAT} times"
            self.product *= max(1, *counts)
            if self.product > _MAX_REPEAT_PRODUCT:
                return "has repeats too large for Go's regexp"
            self.i = braces.end()
            return None
        self.i += 1
        return None
