"""Send Django signals from async code with bounds; receive them without making senders wait.

* :mod:`~django_async_toolkit.signals.dispatch`: :func:`asend` and :func:`asend_robust`, Django
  6.1's ``Signal.asend`` on every supported Django, with a per-receiver timeout and a concurrency
  bound.
* :mod:`~django_async_toolkit.signals.background`: :func:`send_background`,
  :func:`drain_background`, :func:`drain_background_sync`, :func:`background_receiver` and
  :func:`stop_background_loop`: dispatch that the sender does not wait for.
* :mod:`~django_async_toolkit.signals.tasks`: ``background_receiver(..., task="alias")`` hands
  the receiver to Django Tasks, run by a worker process.

Import them from here: ``from django_async_toolkit.signals import background_receiver``.
"""

from __future__ import annotations

from django_async_toolkit.signals.background import (
    background_receiver,
    drain_background,
    drain_background_sync,
    is_background_receiver,
    send_background,
    stop_background_loop,
)
from django_async_toolkit.signals.dispatch import asend, asend_robust

__all__ = [
    "asend",
    "asend_robust",
    "background_receiver",
    "drain_background",
    "drain_background_sync",
    "is_background_receiver",
    "send_background",
    "stop_background_loop",
]
