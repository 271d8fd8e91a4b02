"""The suite's split between pytest-xdist workers (tests/xdist_order.py): modules stay
whole, the provider image's users share one unit, and the long tiers start first."""

from __future__ import annotations

from pathlib import Path

from tests.xdist_order import SHARED_UNITS, TIER_ORDER, rank, unit_of

TESTS = Path(__file__).resolve().parents[1]


def test_a_module_is_one_unit_and_the_image_users_share_one() -> None:
    assert "tests/api/test_api.py" == unit_of("tests/api/test_api.py::test_x[a::b]")
    assert "tests/swarm/test_swarm_state.py" == unit_of(
        "tests/swarm/test_swarm_state.py::TestX::test_y"
    )
    assert {"provider image"} == {
        unit_of("tests/engine/test_image.py::test_a"),
        unit_of("tests/engine/test_quickstart.py::test_b"),
    }


def test_units_start_by_tier_the_long_ones_first() -> None:
    units = [
        "tests/core/test_routing.py",
        "tests/engine/test_init.py",
        "tests/swarm/test_swarm_e2e.py",
        "provider image",
        "tests/traefik/test_e2e.py",
    ]
    assert [
        "provider image",
        "tests/swarm/test_swarm_e2e.py",
        "tests/traefik/test_e2e.py",
        "tests/engine/test_init.py",
        "tests/core/test_routing.py",
    ] == sorted(units, key=rank)
    assert len(TIER_ORDER) == rank("tests/api/test_api.py")


def test_every_module_of_the_shared_unit_that_exists_uses_the_provider_image() -> None:
    present = [path for path in SHARED_UNITS if (TESTS.parent / path).exists()]
    assert present, SHARED_UNITS
    for path in present:
        assert "provider_image" in (TESTS.parent / path).read_text(), path
