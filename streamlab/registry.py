"""Name → factory registries, one per strategy family.

A strategy is named by a *spec*: ``name`` or ``name:arg[,arg...]`` (``drop_oldest:4``,
``target_fps:5``). Config files, env vars, CLI flags, widget dropdowns and benchmark
parameters all use the same spec. Arguments are converted with the factory's type hints.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from streamlab.errors import ConfigError, UnknownStrategyError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Spec:
    """A parsed strategy spec: its name and its raw string arguments."""

    name: str
    args: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Spec:
        text = text.strip()
        if not text:
            raise ConfigError("empty strategy name")
        name, _, rest = text.partition(":")
        args = tuple(a.strip() for a in rest.split(",")) if rest else ()
        return cls(name.strip().lower(), args)

    def __str__(self) -> str:
        return self.name + (":" + ",".join(self.args) if self.args else "")


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    name: str
    factory: Callable[..., T]
    summary: str
    usage: str


class Registry(Generic[T]):
    """Strategies of one family by name. ``create("drop_oldest:4")`` builds one."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self, name: str, *, summary: str = ""
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: register ``factory`` under ``name``."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            doc = summary or (inspect.getdoc(factory) or "").split("\n", 1)[0]
            self._entries[name] = Entry(name, factory, doc, _usage(name, factory))
            return factory

        return decorate

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and Spec.parse(name).name in self._entries

    def validate(self, spec: str) -> str:
        """Check that ``spec`` builds; return it normalised. Raises ConfigError."""
        self.create(spec)
        return str(Spec.parse(spec))

    def create(self, spec: str | Spec) -> T:
        parsed = spec if isinstance(spec, Spec) else Spec.parse(spec)
        entry = self._entries.get(parsed.name)
        if entry is None:
            choices = ", ".join(e.usage for e in self.entries())
            raise UnknownStrategyError(
                f"unknown {self.family} strategy {parsed.name!r}; choose from: {choices}"
            )
        try:
            args = _convert(entry.factory, parsed.args)
            return entry.factory(*args)
        except ConfigError as exc:
            raise ConfigError(f"{self.family} strategy {parsed}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"bad {self.family} strategy {str(parsed)!r} ({exc}); usage: {entry.usage}"
            ) from None


def _params(factory: Callable[..., Any]) -> list[inspect.Parameter]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = list(inspect.signature(target).parameters.values())
    if inspect.isclass(factory):
        params = params[1:]
    return [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]


def _usage(name: str, factory: Callable[..., Any]) -> str:
    params = _params(factory)
    if not params:
        return name
    return name + ":" + ",".join(p.name.upper() for p in params)


def _convert(factory: Callable[..., Any], raw: tuple[str, ...]) -> list[Any]:
    params = _params(factory)
    if len(raw) > len(params):
        raise ValueError(f"takes at most {len(params)} argument(s), got {len(raw)}")
    target = factory.__init__ if inspect.isclass(factory) else factory
    hints = typing.get_type_hints(target)
    out: list[Any] = []
    for param, text in zip(params, raw, strict=False):
        kind = hints.get(param.name, str)
        if kind is bool:
            out.append(text.lower() in ("1", "true", "yes", "on"))
        elif kind in (int, float):
            out.append(kind(text))
        else:
            out.append(text)
    return out
