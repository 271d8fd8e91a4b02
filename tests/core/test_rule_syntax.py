"""The rule parser against Traefik v3's grammar: tables of accepted and refused rules.

Traefik's own behaviour for these rules is proven through the real binary in
``test_hostile_labels.py`` (generated rules) and ``test_traefik_accepts.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provider.core.labels import LabelDefaults, LabelProblem, parse
from provider.core.rule_syntax import (
    And,
    Matcher,
    Not,
    Or,
    RuleSyntaxError,
    parse_rule,
    rule_problem,
)
from tests.factories import make_container

#: Issue 9, defect 4: the old quote-toggling check passed it, Traefik rejects the main
#: router but accepts the preview one, which matches every request on the entrypoint.
HIJACK = 'Host("\\"")) || PathPrefix(`/`) || (Host("\\"")'


def test_the_hijack_rule_is_a_label_error_of_its_service() -> None:
    """The rule from the issue is refused, with the position where its string ends early."""
    assert "found ')' at position 11" in (rule_problem(HIJACK) or "")
    placement = parse(make_container("evil", extra={"bluegreen.rule": HIJACK}), LabelDefaults())
    assert isinstance(placement, LabelProblem)
    assert "evil" == placement.service
    assert "label bluegreen.rule: expected '&&', '||'" in placement.message


@pytest.mark.parametrize(
    ("rule", "tree"),
    [
        ("Host(`a`)", Matcher("Host", ("a",))),
        ("host(`a`)", Matcher("Host", ("a",))),
        ("HOST(`a`)", Matcher("Host", ("a",))),
        ("Pathprefix(`/a`)", Matcher("PathPrefix", ("/a",))),
        ('Host("a\\"b")', Matcher("Host", ('a"b',))),
        ('Path("/\\x41\\101\\u0041\\U00000041\\t")', Matcher("Path", ("/AAAA\t",))),
        ('Path("/\\u00e9")', Matcher("Path", ("/\u00e9",))),
        ('Path(`/\\x41"`)', Matcher("Path", ('/\\x41"',))),  # raw: no escapes
        ("Header(`X`, `)`)", Matcher("Header", ("X", ")"))),
        ("Query(`a`)", Matcher("Query", ("a",))),
        ("Query(`a`, `b`)", Matcher("Query", ("a", "b"))),
        ("ClientIP(`10.0.0.0/8`)", Matcher("ClientIP", ("10.0.0.0/8",))),
        ("ClientIP(`::1`)", Matcher("ClientIP", ("::1",))),
        ("HostRegexp(`^[a-z]+\\.invalid$`)", Matcher("HostRegexp", ("^[a-z]+\\.invalid$",))),
        ("PathRegexp(`(?i)^/a{1,3}b*?`)", Matcher("PathRegexp", ("(?i)^/a{1,3}b*?",))),
        (
            "Host(`a`) || Host(`b`) && !Path(`/x`)",
            Or(
                Matcher("Host", ("a",)),
                And(Matcher("Host", ("b",)), Not(Matcher("Path", ("/x",)))),
            ),
        ),
        (
            " !!( Host (`a`) ) ",
            Not(Not(Matcher("Host", ("a",)))),
        ),
    ],
)
def test_well_formed_rules_parse_to_their_tree(rule: str, tree: object) -> None:
    """Go's precedence (``!`` > ``&&`` > ``||``), escapes and Traefik's name spellings."""
    assert tree == parse_rule(rule)


@pytest.mark.parametrize(
    ("rule", "message", "position"),
    [
        ("Host(`a`", "expected ',' or ')'", 9),
        ("Host(`a`))", "found ')'", 10),
        ("Host(`a`) && (", "expected a matcher or '('", 15),
        ("Host(`a`) /* c */", "comments are not allowed", 11),
        ("Host(`a`) // c", "comments are not allowed", 11),
        ("Host(/**/`a`)", "comments are not allowed", 6),
        ("Host(`a)", "unterminated raw string", 6),
        ('Host("a)', 'unterminated "string"', 6),
        ("Host('a')", "single quotes make a rune", 6),
        ('Host("\\\'")', "unknown escape sequence \\'", 7),
        ('Host("\\q")', "unknown escape sequence \\q", 7),
        ('Host("\\x4")', "\\x escape needs 2 hex digits", 7),
        ('Host("\\400")', "octal escape", 7),
        ('Host("\\ud800")', "not a valid Unicode code point", 7),
        ('Path("/\\xff")', "not valid UTF-8", 6),
        ("Bogus(`x`)", "unknown matcher 'Bogus'", 1),
        ("HostRegExp(`x`)", "unknown matcher 'HostRegExp'", 1),
        ("Host(`a`, `b`)", "Host takes 1 argument(s), got 2", 1),
        ("Header(`X`)", "Header takes 2 argument(s), got 1", 1),
        ("Query()", "Query takes 1 or 2 argument(s), got 0", 1),
        ("Host(`a`,)", "expected a string argument", 10),
        ("Host(``)", "Host argument is empty", 6),
        ("Host(`\u00e9`)", "must be ASCII", 6),
        ("Path(`a`)", "must start with '/'", 6),
        ("ClientIP(`10.0.0.0/255.0.0.0`)", "not an IP address", 10),
        ("ClientIP(`fe80::1%eth0`)", "not an IP address", 10),
        ("PathRegexp(`(a)\\1`)", "escape \\1", 12),
        ("PathRegexp(`(?=a)`)", "group form", 12),
        ("PathRegexp(`a*+`)", "repeat of a repeat", 12),
        ("PathRegexp(`a{1001}`)", "more than 1000", 12),
        ("PathRegexp(`[[:alpha:]]`)", "regular expression", 12),
        ("PathRegexp(`(`)", "not a valid regular expression", 12),
        ("Host(`a`) & Host(`b`)", "use '&&'", 11),
        ("Host(`a`) != Host(`b`)", "'!=' is not a rule operator", 11),
        ("Host(`a`) Host(`b`)", "found 'Host'", 11),
        ("Host(1)", "numbers are not rule arguments", 6),
        ("Host(Path(`/`))", "expected a string argument", 6),
        ("`a`", "expected a matcher or '('", 1),
        ("Host", "expected '(' after Host", 5),
        ("()", "expected a matcher or '('", 2),
        ("Host(`a`)\n", "control or non-printable character", 10),
        ("Host(`a`) \u2028", "control or non-printable character", 11),
        ("(" * 33 + "Host(`a`)" + ")" * 33, "parentheses nest deeper than 32", 33),
        ("Host(`a`) || " * 200 + "Host(`a`)", "longer than 2048", 2049),
    ],
)
def test_malformed_rules_name_the_problem_and_its_position(
    rule: str, message: str, position: int
) -> None:
    """Anything Traefik would refuse, or that could break the preview wrapper, is refused."""
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule(rule)
    assert message in caught.value.message
    assert position == caught.value.position
    assert f"at position {position}" in (rule_problem(rule) or "")


def test_deep_negation_is_not_recursive() -> None:
    """A long run of ``!`` parses without exhausting the interpreter's recursion limit."""
    expr = parse_rule("!" * 2000 + "Host(`a`)")
    depth = 0
    while isinstance(expr, Not):
        expr, depth = expr.operand, depth + 1
    assert (2000, Matcher("Host", ("a",))) == (depth, expr)


_chunk = st.sampled_from(
    [
        "Host(`a`)",
        'Host("\\"")',
        "PathPrefix(`/`)",
        "Header(`X`, `)`)",
        "(",
        ")",
        " && ",
        " || ",
        "!",
        '"',
        "`",
        "'",
        "\\",
        "/*",
        "*/",
        "//",
        ",",
        "Bogus(`x`)",
        'Path("/\\x41")',
    ]
)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, derandomize=True, database=None)
@given(rule=st.lists(_chunk, min_size=1, max_size=12).map("".join))
def test_wrapping_an_accepted_rule_keeps_its_meaning(rule: str) -> None:
    """For every accepted rule R, ``(R) && Header(...)`` is exactly R and the header check."""
    if rule_problem(rule) is not None:
        return
    wrapped = f"({rule}) && Header(`X-Bluegreen-Color`, `green`)"
    assert And(parse_rule(rule), Matcher("Header", ("X-Bluegreen-Color", "green"))) == parse_rule(
        wrapped
    )
