"""The rule parser's edges, table by table: escapes, boundaries, each matcher's value
checks and the regular-expression subset, with the message and position of each refusal.

Pinned by mutation testing (docs/mutation.md): the first run of
``provider/core/rule_syntax.py`` left these behaviours unjudged by
``tests/core/test_rule_syntax.py``.
"""

from __future__ import annotations

import re

import pytest

from provider.core.rule_syntax import (
    MAX_DEPTH,
    MAX_RULE,
    Matcher,
    RuleSyntaxError,
    parse_rule,
    regex_problem,
    rule_problem,
)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('"\\a\\b\\f\\n\\r\\t\\v"', "\x07\x08\x0c\n\r\t\x0b"),
        ('"\\\\\\""', '\\"'),
        ('"\\101\\060\\177"', "A0\x7f"),
        ('"\\303\\251"', "\u00e9"),
        ('"\\x41\\x7e"', "A~"),
        ('"\\xC3\\xA9"', "\u00e9"),
        ('"\\u00e9\\u00E9"', "\u00e9\u00e9"),
        ('"\\uD7FF\\uE000"', "\ud7ff\ue000"),
        ('"\\U0001F600"', "\U0001f600"),
        ('"\\U0010FFFF"', "\U0010ffff"),
        ('"a\\tb"', "a\tb"),
        ('"\u00e9"', "\u00e9"),
        ("`\\t`", "\\t"),
    ],
)
def test_string_literals_unescape_as_go(literal: str, value: str) -> None:
    """Each Go escape gives its byte or code point; raw strings keep backslashes."""
    assert Matcher("Header", ("X", value)) == parse_rule(f"Header(`X`, {literal})")


@pytest.mark.parametrize(
    ("rule", "message", "position"),
    [
        ('Path("/\\377")', "string is not valid UTF-8 once unescaped", 6),
        ('Path("/\\12")', "octal escape needs 3 digits up to \\377", 8),
        ('Path("/\\18")', "octal escape needs 3 digits up to \\377", 8),
        ('Path("/\\u00e")', "\\u escape needs 4 hex digits", 8),
        ('Path("/\\U0001F60")', "\\U escape needs 8 hex digits", 8),
        ('Path("/\\xg1")', "\\x escape needs 2 hex digits", 8),
        ('Path("/\\uDFFF")', "escape is not a valid Unicode code point", 8),
        ('Path("/\\uD800")', "escape is not a valid Unicode code point", 8),
        ('Path("/\\U00110000")', "escape is not a valid Unicode code point", 8),
        ('Host("a\\")', 'unterminated "string"', 6),
        ('Host("a', 'unterminated "string"', 6),
        ("Host(`a`) | Host(`b`)", "unexpected '|' (use '||')", 11),
        ("Host(`a`) & Host(`b`)", "unexpected '&' (use '&&')", 11),
        ("Host(`a`) ; Host(`b`)", "unexpected character ';'", 11),
        ("_Host(`a`)", "unknown matcher '_Host'", 1),
        ("Xyz(`a`)", "unknown matcher 'Xyz'", 1),
        ("H(`a`)", "unknown matcher 'H'", 1),
        ("Host_x(`a`)", "unknown matcher 'Host_x'", 1),
        ("Host(`a`) != Host(`b`)", "'!=' is not a rule operator", 11),
        ("Host(`a`) // c", "comments are not allowed in a rule", 11),
        ("Host(`a)", "unterminated raw string", 6),
        ("Host('a')", 'single quotes make a rune, not a string: use ` or "', 6),
        ("Host(1)", "numbers are not rule arguments", 6),
        ("Host(`a`) !", "expected '&&', '||' or the end of the rule, found '!'", 11),
        ('Path("a")', "Path argument must start with '/'", 6),
        ("Host2(`a`)", "unknown matcher 'Host2'", 1),
        ("x" * 50 + "(`a`)", f"unknown matcher '{'x' * 40}'", 1),
        ("Host(`a`) Host", "expected '&&', '||' or the end of the rule, found 'Host'", 11),
        (
            "Host(`a`) " + "x" * 50,
            f"expected '&&', '||' or the end of the rule, found '{'x' * 40}'",
            11,
        ),
        ("HostRegexp(`(`)", "HostRegexp argument is not a valid regular expression", 12),
        ("Host(`a`) `b`", "expected '&&', '||' or the end of the rule, found a string", 11),
        ("Host(`a`)(", "expected '&&', '||' or the end of the rule, found '('", 10),
        ("Host(`a`) && && Host(`b`)", "expected a matcher or '(', found '&&'", 14),
        ("Host(`a`) ||", "expected a matcher or '(', found the end of the rule", 13),
        ("Host(`a`", "expected ',' or ')', found the end of the rule", 9),
        ("Host `a`", "expected '(' after Host, found a string", 6),
        ("(Host(`a`)", "expected ')', found the end of the rule", 11),
        ("Query(`a`, `b`, `c`)", "Query takes 1 or 2 argument(s), got 3", 1),
        ("Host(`a`) && Path(`/`, `b`)", "Path takes 1 argument(s), got 2", 14),
        ("HostRegexp(`\u00e9`)", "HostRegexp argument must be ASCII", 12),
        ("PathPrefix(`a`)", "PathPrefix argument must start with '/'", 12),
        ("Header(`X`, ``)", "Header argument is empty", 13),
        (
            "ClientIP(`" + "1" * 70 + "`)",
            f"ClientIP argument '{'1' * 60}' is not an IP address or CIDR range",
            10,
        ),
        ("HeaderRegexp(`X`, `(`)", "HeaderRegexp argument is not a valid regular expression", 19),
        ("QueryRegexp(`a`, `(`)", "QueryRegexp argument is not a valid regular expression", 18),
        ("Host(`a`)\x7f", "control or non-printable character", 10),
        ("Host(`a`)\t", "control or non-printable character", 10),
        ("Host(`\u00a0`)", "control or non-printable character", 7),
        ("\ufeffHost(`a`)", "control or non-printable character", 1),
        ("Host(`a`) \ud800", "control or non-printable character", 11),
        ("Host(`" + "a" * (MAX_RULE - 7) + "`)", "rule is longer than 2048 characters", 2049),
    ],
)
def test_refusals_name_the_problem_and_its_position(rule: str, message: str, position: int) -> None:
    """The exact message and 1-based position an operator sees in the label error."""
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule(rule)
    assert (message, position) == (caught.value.message[: len(message)], caught.value.position)
    assert f"{caught.value.message} at position {position}" == rule_problem(rule)


@pytest.mark.parametrize(
    "rule",
    [
        "(" * MAX_DEPTH + "Host(`a`)" + ")" * MAX_DEPTH,
        "Host(`a`)&&Host(`b`)||!Host(`c`)",
        "Host(`" + "a" * (MAX_RULE - 8) + "`)",
        "Hostregexp(`a`) || HOSTREGEXP(`a`) || hostregexp(`a`) || HostRegexp(`a`)",
        "HeaderRegexp(`(`, `a`)",
        "QueryRegexp(`(`)",
        "Header(`X`, `(`) && Query(`a`, `(`)",
        "Path(`/(`) && PathPrefix(`/[`) && Host(`(`)",
        "ClientIP(`10.0.0.0/0`) || ClientIP(`::/0`) || ClientIP(`10.0.0.1/32`)",
        "ClientIP(`10.0.0.1/8`) || ClientIP(`1.2.3.4`) || ClientIP(`2001:db8::/32`)",
    ],
)
def test_rules_at_the_edges_are_accepted(rule: str) -> None:
    """Bounds are inclusive; only regexp matchers' pattern arguments are read as patterns."""
    assert rule_problem(rule) is None


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.0/08",
        "10.0.0.0/00",
        "10.0.0.0/01",
        "10.0.0.1/33",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "10.0.0.0/\u0668",
        "1.2.3",
        "1.2.3.4/24/8",
        "fe80::1%eth0",
        "::1%1",
    ],
)
def test_client_ip_refuses_what_go_cannot_parse(value: str) -> None:
    """Leading zeros, non-ASCII digits, extra slashes and zones are not Go's CIDRs."""
    assert f"ClientIP argument {value!r} is not an IP address or CIDR range at position 10" == (
        rule_problem(f"ClientIP(`{value}`)")
    )


@pytest.mark.parametrize(
    "pattern",
    [
        "\\x41[\\x41]",
        "\\.\\-\\(?",
        "\\b\\B\\A\\0",
        "\\a\\f\\n\\r\\t\\v\\d\\D\\s\\S\\w\\W",
        "[\\a\\f\\n\\r\\t\\v\\d\\D\\s\\S\\w\\W\\0]",
        "[]a]",
        "[^]a]",
        "(?i)(?:a)(?P<n1_>a)(?i:a)(?-i:a)(?im-s:a)",
        "(?ims)a",
        "a*?b+?c??d{2}?",
        "a{1000}",
        "a{0,1000}",
        "a{1000,}",
        "(?:x{1000})",
        "(a{100}){100}",
        "(a{10}){10}b*",
        "a*\\.*",
        "[a]*",
        "(?:a)*",
        "a{0}",
        "x{1,}",
        "((a{1}){100}){100}",
        "[ab*+]",
        "[a]\\b",
        "[a][b]",
        "[^]]\\b",
        "[]]\\b",
        "ab(?:c)",
        "XXL",
    ],
)
def test_regexes_go_and_python_read_alike_are_accepted(pattern: str) -> None:
    """Escapes, groups, lazy repeats and counts up to Go's limits are in the subset."""
    assert regex_problem(pattern) is None
    assert rule_problem(f"PathRegexp(`{pattern}`)") is None


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("\\\u00e9", "uses the escape \\\u00e9, which Go and Python read differently"),
        ("\\Z", "uses the escape \\Z, which Go and Python read differently"),
        ("[\\b]", "uses the escape \\b, which Go and Python read differently"),
        ("[a[]", "has '[' inside a character class"),
        ("[^[]", "has '[' inside a character class"),
        ("(?#c)", "uses a group form Go does not support"),
        ("a(?=b)", "uses a group form Go does not support"),
        ("a++", "has a repeat of a repeat, which Go refuses"),
        ("a?+", "has a repeat of a repeat, which Go refuses"),
        ("a{2}+", "has a repeat of a repeat, which Go refuses"),
        ("a{2,3}+", "has a repeat of a repeat, which Go refuses"),
        ("x{1001}", "repeats more than 1000 times"),
        ("a{2,1001}", "repeats more than 1000 times"),
        ("(a{101}){100}", "has repeats too large for Go's regexp"),
        ("(a{100}){101}", "has repeats too large for Go's regexp"),
        ("[a", "is not a valid regular expression (unterminated character set at position 0)"),
        ("\\x41\\Z", "uses the escape \\Z, which Go and Python read differently"),
        ("\\.\\Z", "uses the escape \\Z, which Go and Python read differently"),
        ("[^]\\b]", "uses the escape \\b, which Go and Python read differently"),
        ("[]\\b]", "uses the escape \\b, which Go and Python read differently"),
        ("a[^]\\b]", "uses the escape \\b, which Go and Python read differently"),
        ("a[]\\b]", "uses the escape \\b, which Go and Python read differently"),
        ("[a]b++", "has a repeat of a repeat, which Go refuses"),
        ("(?:a)b++", "has a repeat of a repeat, which Go refuses"),
        ("a{2}b++", "has a repeat of a repeat, which Go refuses"),
    ],
)
def test_regexes_outside_the_subset_say_why(pattern: str, problem: str) -> None:
    """Each refusal names what Go would read differently or refuse."""
    assert problem == regex_problem(pattern)


def test_the_compilers_complaint_is_quoted_up_to_80_characters() -> None:
    """A pattern Python's ``re`` refuses says why, in its own words, cut to 80 characters."""
    pattern = "(?P<a-" + "b" * 80 + ">x)"
    with pytest.raises(re.error) as refused:
        re.compile(pattern)
    assert len(str(refused.value)) > 80
    assert f"is not a valid regular expression ({str(refused.value)[:80]})" == regex_problem(
        pattern
    )


@pytest.mark.parametrize("rule", ["", " ", "   "])
def test_a_blank_rule_is_empty(rule: str) -> None:
    """Nothing to parse is its own problem, not a position."""
    assert "rule is empty" == rule_problem(rule)
