"""A lock-free ``cached_property`` for the units of work (made once per event)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

__all__ = ["_lazy"]

T = TypeVar("T")


class _lazy(Generic[T]):  # noqa: N801 - used as a decorator, like property
    """Compute an attribute on first access and keep it in the instance's ``__dict__``.

    ``functools.cached_property`` takes a lock on every first access (Python 3.11), which
    costs more than making the repositories themselves.
    """

    def __init__(self, factory: Callable[[Any], T]) -> None:
        self._factory = factory
        self._name = factory.__name__
        self.__doc__ = factory.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _lazy[T]: ...

    @overload
    def __get__(self, obj: object, owner: type) -> T: ...

    def __get__(self, obj: object | None, owner: type) -> T | _lazy[T]:
        if obj is None:
            return self
        value = self._factory(obj)
        obj.__dict__[self._name] = value
        return value
