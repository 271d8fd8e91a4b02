"""Tables for the pure part of the Swarm state store: names, pruning, superseded commits."""

from __future__ import annotations

from typing import Any

import pytest

from provider.core.state_versions import (
    ConfigVersion,
    by_version,
    config_name,
    describe,
    parse_version,
    superseded,
    to_prune,
)

C = ConfigVersion


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bg-state-1", 1),
        ("bg-state-42", 42),
        ("bg-state-999999999999999999", 999999999999999999),
        ("bg-state-0", None),  # version 0 is the empty state, never a config
        ("bg-state-007", None),  # one version, one name
        ("bg-state-", None),
        ("bg-state-1x", None),
        ("bg-state-x", None),
        ("xbg-state-1", None),
        ("bg-state-1\n", None),
        ("bg-state--1", None),
        ("bgxstate-1", None),
        ("other-state-1", None),
        ("bg-state-1234567890123456789", None),  # over 18 digits: not ours
        ("bg-state-\u0661", None),  # an Arabic-Indic one is no ASCII digit
    ],
)
def test_a_config_name_carries_its_version_or_is_not_a_state(
    name: str, expected: int | None
) -> None:
    """Only the exact names :func:`config_name` makes are state versions."""
    assert expected == parse_version("bg", name)


def test_a_prefix_with_regex_characters_is_taken_literally() -> None:
    assert (7, None) == (parse_version("a.b", "a.b-state-7"), parse_version("a.b", "axb-state-7"))


@pytest.mark.parametrize("version", [1, 2, 10, 12345])
def test_names_round_trip(version: int) -> None:
    assert version == parse_version("bluegreen", config_name("bluegreen", version))


@pytest.mark.parametrize(
    ("versions", "keep", "expected"),
    [
        ([], 3, []),
        ([1], 3, []),
        ([1, 2, 3], 3, []),
        ([1, 2, 3, 4], 3, [1]),
        ([4, 1, 3, 2, 5], 3, [1, 2]),
        ([1, 2, 3], 1, [1, 2]),
        ([1, 2, 3], 0, [1, 2]),  # at least the newest is kept
        ([2, 9, 10], 2, [2]),  # a crashed pruner's leftover goes too
        ([3, 3, 4], 1, [3]),
    ],
)
def test_to_prune_keeps_the_newest(versions: list[int], keep: int, expected: list[int]) -> None:
    assert expected == to_prune(versions, keep)


@pytest.mark.parametrize(
    ("ours", "listed", "expected"),
    [
        # The usual commit: the newest version, created last.
        (C(5, 50), [C(3, 30), C(4, 40), C(5, 50)], None),
        # A lagging replica re-created pruned version 2 after 9 and 10 were made.
        (C(2, 60), [C(9, 40), C(10, 50), C(2, 60)], C(10, 50)),
        # Only one newer version came first: still superseded.
        (C(2, 60), [C(9, 70), C(10, 55), C(2, 60)], C(10, 55)),
        # Higher versions made after ours extend ours: fine.
        (C(5, 50), [C(5, 50), C(6, 51), C(7, 52)], None),
        # Equal index is ours itself (one object per index).
        (C(5, 50), [C(6, 50)], None),
        # Older versions with lower indexes are history.
        (C(5, 50), [C(1, 1), C(4, 49)], None),
        (C(5, 50), [], None),
    ],
)
def test_a_commit_is_superseded_by_a_higher_version_created_before_it(
    ours: ConfigVersion, listed: list[ConfigVersion], expected: ConfigVersion | None
) -> None:
    """The Raft index orders creates across the cluster; version numbers alone cannot."""
    assert expected == superseded(ours, listed)


def config(name: Any, index: Any = 7, labels: Any = None) -> dict[str, Any]:
    return {"Version": {"Index": index}, "Spec": {"Name": name, "Labels": labels or {}}}


def test_by_version_keeps_only_state_configs() -> None:
    configs = [config("bg-state-2"), config("bg-state-x"), config(None), {}, config("bg-state-1")]
    assert [1, 2] == sorted(by_version("bg", configs))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (config("bg-state-3", 12, {"c": "abc"}), C(3, 12, "abc")),
        (config("bg-state-3", 12), C(3, 12, None)),
        (config("bg-state-3", "12", {"c": 5}), C(3, 0, None)),  # malformed: no trust
        (config("bg-state-3", True), C(3, 0, None)),
        ({"Spec": {"Name": "bg-state-3"}}, C(3, 0, None)),
        ({"Version": None, "Spec": {"Name": "bg-state-3", "Labels": None}}, C(3, 0, None)),
    ],
)
def test_describe_reads_the_raft_index_and_the_commit_id(
    raw: dict[str, Any], expected: ConfigVersion
) -> None:
    assert {3: expected} == describe(by_version("bg", [raw]), "c")
