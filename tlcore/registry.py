"""A small name -> builder registry, shared by datasets and backbones (timm's pattern).

The function name is the public name (``_`` kept, lowercase); listing and building go
through the registry so the UI's dropdowns and the tests' parametrization agree.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import verify_choice

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    """Maps lowercase names to builder functions, in registration order."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, F] = {}

    def register(self, fn: F | None = None, *, name: str | None = None):
        """Decorator: ``@reg.register`` or ``@reg.register(name="fashion-mnist")``."""

        def wrap(f: F) -> F:
            key = (name or f.__name__).lower()
            if key in self._entries:
                raise KeyError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = f
            return f

        return wrap(fn) if fn is not None else wrap

    def names(self) -> list[str]:
        return list(self._entries)

    def get(self, name: str) -> F:
        verify_choice(name, self.kind, self._entries)
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        return name in self._entries
