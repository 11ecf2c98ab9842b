"""Argument checks and the names used in messages, written once for the whole package.

The one rule for durations: **a number of seconds** is an ``int`` or ``float`` (never a ``bool``),
finite, and greater than 0 (or at least 0 where zero means "do not wait").
"No limit" is always spelled ``None``: ``float("inf")`` and NaN are rejected everywhere, by the
settings' system check as by every function that takes a timeout.
A **positive int** is an ``int`` (never a ``bool``) of at least 1.

This module imports nothing of the package.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any

from django.dispatch import Signal

__all__ = [
    "check_callable",
    "check_positive_int",
    "check_signal",
    "check_timeout",
    "describe_value",
    "is_number",
    "is_positive_int",
    "is_seconds",
    "qualname",
    "unwrap_partial",
]


def is_number(value: object) -> bool:
    """An ``int`` or ``float`` that is not a ``bool`` and is finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_seconds(value: object, *, zero: bool = False) -> bool:
    """A number of seconds: finite, greater than 0 (or at least 0 with ``zero=True``)."""
    if not is_number(value):
        return False
    return value >= 0 if zero else value > 0  # type: ignore[operator]


def is_positive_int(value: object) -> bool:
    """An ``int`` of at least 1 that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def unwrap_partial(func: object) -> object:
    """The function inside any number of ``functools.partial`` layers."""
    while isinstance(func, functools.partial):
        func = func.func
    return func


def qualname(obj: object) -> str:
    """``module.QualifiedName`` of a function, method, class or callable, for logs and errors.

    A ``functools.partial`` is named by the function it wraps; any other object without a
    ``__qualname__`` by its type.
    """
    target = unwrap_partial(obj)
    if not hasattr(target, "__qualname__"):
        target = type(target)
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None) or repr(target)
    return f"{module}.{name}" if module else str(name)


def describe_value(value: object) -> str:
    """``None``, or ``a module.Type object``: how an unexpected argument is named in a message."""
    if value is None:
        return "None"
    return f"a {qualname(type(value))} object"


def check_signal(signal: object, function: str) -> None:
    """Raise :class:`TypeError` unless ``signal`` is a ``django.dispatch.Signal``."""
    if not isinstance(signal, Signal):
        raise TypeError(
            f"{function}() needs a django.dispatch.Signal (such as post_save or a Signal() of "
            f"your own) as its first argument, not {type(signal).__name__} {signal!r}."
        )


def check_timeout(timeout: object, function: str) -> None:
    """Check ``function(timeout=...)``: a number of seconds (see the module's rule) or ``None``."""
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(
            f"{function}(timeout=...) must be a number of seconds or None, "
            f"not {type(timeout).__name__} {timeout!r}."
        )
    if not is_seconds(timeout):
        raise ValueError(
            f"{function}(timeout={timeout!r}): the timeout must be a finite number of seconds "
            "greater than 0, or None for no timeout."
        )


def check_positive_int(value: object, function: str, argument: str) -> None:
    """Check ``function(argument=...)``: a positive int (see the module's rule) or ``None``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{function}({argument}=...) must be an int or None, "
            f"not {type(value).__name__} {value!r}."
        )
    if value < 1:
        raise ValueError(
            f"{function}({argument}={value!r}): the bound must be at least 1, "
            "or None for no bound."
        )


def check_callable(who: str, func: Any) -> None:
    """Raise :class:`TypeError` unless ``func`` is a callable that is not an async generator."""
    if not callable(func):
        raise TypeError(f"{who}() needs a callable; got {func!r} ({type(func).__name__}).")
    if inspect.isasyncgenfunction(unwrap_partial(func)):
        raise TypeError(
            f"{who}() cannot adapt {qualname(func)}: it is an async generator function. "
            "Iterate it with `async for` in async code instead."
        )
