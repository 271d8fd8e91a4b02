"""A tokenizer and recursive-descent parser of Traefik v3's HTTP rule grammar.

Why a real parser: preview routers wrap a label's rule as
``(<rule>) && Header(...)``. If the rule is not one well-formed expression, the
wrapper can close it early and turn ``&& Header`` into an ``||`` that matches
every host on the entrypoint (issue 9, defect 4). Traefik parses rules with Go's
``go/parser`` (``ParseExpr``, via ``vulcand/predicate``, ``pkg/rules/parser.go``),
so string literals follow Go's scanner: ``"..."`` with escapes, raw ```...```,
``//`` and ``/* */`` comments. This module accepts the subset of that language
Traefik turns into a router and refuses everything else, with the position of
the first problem:

    rule    = or
    or      = and { "||" and }
    and     = unary { "&&" unary }
    unary   = { "!" } primary
    primary = "(" or ")" | MATCHER "(" STRING { "," STRING } ")"

Stricter than Traefik on purpose (nothing here is needed in a label): comments,
line breaks and control characters, trailing commas, strings that are not UTF-8
after unescaping, and regular expressions outside the part Go's RE2 and Python's
``re`` read alike are refused. Matcher names and arities are Traefik v3.7's
(``pkg/muxer/http/matcher.go``); values are checked as those matchers do, so an
accepted rule never leaves a router disabled.

Pure: no I/O, no asyncio.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from provider.core.rule_regex import regex_problem as regex_problem

#: Longest rule accepted: main routers' default priority is the rule's length,
#: and preview priorities add it to a base (see ``render.PREVIEW_PRIORITY_BASE``).
MAX_RULE = 2048
#: Deepest parenthesis nesting accepted: keeps the recursive descent bounded.
MAX_DEPTH = 32

#: Traefik v3's HTTP matchers and how many arguments each takes.
ARITY: dict[str, tuple[int, ...]] = {
    "ClientIP": (1,),
    "Method": (1,),
    "Host": (1,),
    "HostRegexp": (1,),
    "Path": (1,),
    "PathRegexp": (1,),
    "PathPrefix": (1,),
    "Header": (2,),
    "HeaderRegexp": (2,),
    "Query": (1, 2),
    "QueryRegexp": (1, 2),
}

#: Spellings Traefik registers for each matcher (``rules.NewParser``): as
#: written, lower case, upper case and title case of the lower-cased name.
_SPELLINGS: dict[str, str] = {
    spelling: name
    for name in ARITY
    for spelling in (name, name.lower(), name.upper(), name.lower().capitalize())
}

_SIMPLE_ESCAPES = {
    "a": 0x07,
    "b": 0x08,
    "f": 0x0C,
    "n": 0x0A,
    "r": 0x0D,
    "t": 0x09,
    "v": 0x0B,
    "\\": 0x5C,
    '"': 0x22,
}
_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RuleSyntaxError(ValueError):
    """The rule is not one Traefik would turn into a router; ``position`` is 1-based."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Matcher:
    """One matcher call, e.g. ``Host(`a`)``: canonical name and unescaped arguments."""

    name: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Not:
    """``!operand``."""

    operand: Expr


@dataclass(frozen=True)
class And:
    """``left && right``."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    """``left || right``."""

    left: Expr
    right: Expr


Expr = Matcher | Not | And | Or


@dataclass(frozen=True)
class Token:
    """One lexeme: ``kind`` is ``(``, ``)``, ``,``, ``&&``, ``||``, ``!``, ``ident``,
    ``string`` or ``end``; ``value`` is the name or the unescaped string."""

    kind: str
    value: str
    position: int


def tokenize(rule: str) -> list[Token]:
    """Split ``rule`` into tokens as Go's scanner would, refusing what Traefik cannot use."""
    tokens: list[Token] = []
    i = 0
    n = len(rule)
    while i < n:
        ch = rule[i]
        pos = i + 1
        if ch == " ":
            i += 1
        elif ch in "(),":
            tokens.append(Token(ch, ch, pos))
            i += 1
        elif ch == "&" or ch == "|":
            if rule[i + 1 : i + 2] != ch:
                raise RuleSyntaxError(f"unexpected {ch!r} (use {ch * 2!r})", pos)
            tokens.append(Token(ch * 2, ch * 2, pos))
            i += 2
        elif ch == "!":
            if rule[i + 1 : i + 2] == "=":
                raise RuleSyntaxError("'!=' is not a rule operator", pos)
            tokens.append(Token("!", "!", pos))
            i += 1
        elif ch == "/" and rule[i + 1 : i + 2] in ("/", "*"):
            raise RuleSyntaxError("comments are not allowed in a rule", pos)
        elif ch == "`":
            end = rule.find("`", i + 1)
            if end < 0:
                raise RuleSyntaxError("unterminated raw string", pos)
            tokens.append(Token("string", rule[i + 1 : end], pos))
            i = end + 1
        elif ch == '"':
            value, i = _interpreted_string(rule, i)
            tokens.append(Token("string", value, pos))
        elif ch == "'":
            raise RuleSyntaxError('single quotes make a rune, not a string: use ` or "', pos)
        elif ch == "_" or ch.isalpha():
            end = i + 1
            while end < n and (rule[end] == "_" or rule[end].isalnum()):
                end += 1
            tokens.append(Token("ident", rule[i:end], pos))
            i = end
        elif ch.isdigit():
            raise RuleSyntaxError("numbers are not rule arguments", pos)
        else:
            raise RuleSyntaxError(f"unexpected character {ch!r}", pos)
    tokens.append(Token("end", "", n + 1))
    return tokens


def _interpreted_string(rule: str, start: int) -> tuple[str, int]:
    """Unescape the ``"..."`` literal opening at ``start``; return it and the index after it.

    Go's rules (``go/scanner.scanEscape``, ``strconv.Unquote``): ``\\a \\b \\f \\n
    \\r \\t \\v \\\\ \\"``, ``\\ooo`` (≤ 255) and ``\\xhh`` give bytes, ``\\uhhhh`` and
    ``\\Uhhhhhhhh`` code points (no surrogates, ≤ U+10FFFF); ``\\'`` is for runes only.
    """
    out = bytearray()
    i = start + 1
    n = len(rule)
    while True:
        if i >= n:
            raise RuleSyntaxError('unterminated "string"', start + 1)
        ch = rule[i]
        if ch == '"':
            break
        if ch != "\\":
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
            continue
        esc = rule[i + 1 : i + 2]
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc in _OCT:
            digits = rule[i + 1 : i + 4]
            if len(digits) != 3 or not set(digits) <= _OCT or int(digits, 8) > 255:
                raise RuleSyntaxError("octal escape needs 3 digits up to \\377", i + 1)
            out.append(int(digits, 8))
            i += 4
        elif esc in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = rule[i + 2 : i + 2 + width]
            if len(digits) != width or not set(digits) <= _HEX:
                raise RuleSyntaxError(f"\\{esc} escape needs {width} hex digits", i + 1)
            code = int(digits, 16)
            if esc == "x":
                out.append(code)
            elif code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise RuleSyntaxError("escape is not a valid Unicode code point", i + 1)
            else:
                out += chr(code).encode("utf-8")
            i += 2 + width
        else:
            raise RuleSyntaxError(f"unknown escape sequence \\{esc}", i + 1)
    try:
        value = out.decode("utf-8")
    except UnicodeDecodeError:
        raise RuleSyntaxError("string is not valid UTF-8 once unescaped", start + 1) from None
    return value, i + 1


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> Token:
        return self.tokens[self.at]

    def take(self, kind: str, what: str) -> Token:
        token = self.tokens[self.at]
        if token.kind != kind:
            raise RuleSyntaxError(f"expected {what}, found {_describe(token)}", token.position)
        self.at += 1
        return token

    def parse(self) -> Expr:
        expr = self.or_(0)
        self.take("end", "'&&', '||' or the end of the rule")
        return expr

    def or_(self, depth: int) -> Expr:
        left = self.and_(depth)
        while self.peek().kind == "||":
            self.at += 1
            left = Or(left, self.and_(depth))
        return left

    def and_(self, depth: int) -> Expr:
        left = self.unary(depth)
        while self.peek().kind == "&&":
            self.at += 1
            left = And(left, self.unary(depth))
        return left

    def unary(self, depth: int) -> Expr:
        nots = 0
        while self.peek().kind == "!":
            self.at += 1
            nots += 1
        expr = self.primary(depth)
        for _ in range(nots):
            expr = Not(expr)
        return expr

    def primary(self, depth: int) -> Expr:
        token = self.peek()
        if token.kind == "(":
            if depth >= MAX_DEPTH:
                raise RuleSyntaxError(f"parentheses nest deeper than {MAX_DEPTH}", token.position)
            self.at += 1
            expr = self.or_(depth + 1)
            self.take(")", "')'")
            return expr
        if token.kind != "ident":
            raise RuleSyntaxError(
                f"expected a matcher or '(', found {_describe(token)}", token.position
            )
        name = _SPELLINGS.get(token.value)
        if name is None:
            raise RuleSyntaxError(f"unknown matcher {token.value[:40]!r}", token.position)
        self.at += 1
        self.take("(", f"'(' after {token.value}")
        args: list[Token] = []
        if self.peek().kind != ")":
            args.append(self.take("string", "a string argument"))
            while self.peek().kind == ",":
                self.at += 1
                args.append(self.take("string", "a string argument"))
        self.take(")", "',' or ')'")
        if len(args) not in ARITY[name]:
            wanted = " or ".join(str(a) for a in ARITY[name])
            raise RuleSyntaxError(
                f"{name} takes {wanted} argument(s), got {len(args)}", token.position
            )
        for index, arg in enumerate(args):
            problem = "is empty" if not arg.value else _value_problem(name, index, arg.value)
            if problem:
                raise RuleSyntaxError(f"{name} argument {problem}", arg.position)
        return Matcher(name, tuple(arg.value for arg in args))


def _describe(token: Token) -> str:
    if token.kind == "end":
        return "the end of the rule"
    if token.kind == "string":
        return "a string"
    return repr(token.value[:40])


def _value_problem(name: str, index: int, value: str) -> str | None:
    """What Traefik's matcher builder would refuse in this argument (it disables the router)."""
    if name in ("Host", "HostRegexp") and not value.isascii():
        return "must be ASCII"
    if name in ("Path", "PathPrefix") and not value.startswith("/"):
        return "must start with '/'"
    if name == "ClientIP" and not _is_ip_or_cidr(value):
        return f"{value[:60]!r} is not an IP address or CIDR range"
    regexp = (
        name in ("HostRegexp", "PathRegexp")
        or (name == "HeaderRegexp" and index == 1)
        or (name == "QueryRegexp" and index == 1)
    )
    if regexp:
        return regex_problem(value)
    return None


def _is_ip_or_cidr(value: str) -> bool:
    """Go's ``net.ParseIP`` or ``net.ParseCIDR`` (no zones, no dotted netmasks)."""
    if "%" in value:
        return False
    address, slash, bits = value.partition("/")
    if slash and not (bits.isascii() and bits.isdigit() and (bits == "0" or bits[0] != "0")):
        return False
    try:
        if slash:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def parse_rule(rule: str) -> Expr:
    """Parse ``rule`` or raise :class:`RuleSyntaxError` naming the first problem's position."""
    if len(rule) > MAX_RULE:
        raise RuleSyntaxError(f"rule is longer than {MAX_RULE} characters", MAX_RULE + 1)
    bad = _CONTROL.search(rule)
    if bad is None:
        bad = next((m for m in re.finditer(r".", rule, re.S) if not m.group().isprintable()), None)
    if bad is not None:
        # Also keeps Traefik's YAML decoder of the served JSON from refusing the whole
        # document over one raw C1 control, BOM or lone surrogate.
        raise RuleSyntaxError("control or non-printable character", bad.start() + 1)
    return _Parser(tokenize(rule)).parse()


def rule_problem(rule: str) -> str | None:
    """Why ``rule`` cannot be a router rule here, or ``None`` if it is one well-formed
    expression (so ``(<rule>) && Header(...)`` keeps its meaning)."""
    if not rule.strip():
        return "rule is empty"
    try:
        parse_rule(rule)
    except RuleSyntaxError as exc:
        return str(exc)
    return None
