"""Put the toolkit's ``asend``/``asend_robust`` in place of Django's, for Django's own test suite.

``tests/test_signals_django_suite.py`` imports this module first in a subprocess that runs Django's
``signals`` and ``dispatch`` test modules (see ``tests/django_suite.py``).
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

from django_async_toolkit import signals as toolkit_signals

PATCHED = "django_async_toolkit.signals"


async def _asend(self: Signal, sender: object, **named: Any) -> list[tuple[Any, Any]]:
    return await toolkit_signals.asend(self, sender, **named)


async def _asend_robust(self: Signal, sender: object, **named: Any) -> list[tuple[Any, Any]]:
    return await toolkit_signals.asend_robust(self, sender, **named)


_asend.__module__ = _asend_robust.__module__ = PATCHED
Signal.asend = _asend  # type: ignore[method-assign]
Signal.asend_robust = _asend_robust  # type: ignore[method-assign]
