"""Registry: one naming scheme for every strategy family."""

from __future__ import annotations

import pytest

import streamlab as sl


def make_registry() -> sl.Registry[tuple[int, float, str]]:
    registry: sl.Registry[tuple[int, float, str]] = sl.Registry("demo")

    @registry.register("thing")
    def thing(n: int = 1, ratio: float = 0.5, label: str = "x") -> tuple[int, float, str]:
        """A thing."""
        return (n, ratio, label)

    return registry


def test_spec_parsing_and_conversion() -> None:
    registry = make_registry()
    assert registry.create("thing") == (1, 0.5, "x")
    assert registry.create("thing:4,0.25,abc") == (4, 0.25, "abc")
    assert registry.create(" THING:2 ") == (2, 0.5, "x")
    assert str(sl.Spec.parse("thing:4, 5")) == "thing:4,5"


def test_usage_and_names() -> None:
    registry = make_registry()
    assert registry.names() == ["thing"]
    assert registry.entries()[0].usage == "thing:N,RATIO,LABEL"
    assert registry.entries()[0].summary == "A thing."
    assert "thing:3" in registry


@pytest.mark.parametrize("spec", ["other", "thing:notanint", "thing:1,2,3,4", ""])
def test_bad_specs(spec: str) -> None:
    with pytest.raises(sl.ConfigError):
        make_registry().create(spec)


def test_unknown_name_is_also_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        make_registry().create("other")
