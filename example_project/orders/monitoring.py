"""Keeps the latest blocking events, for ``GET /demo/blocking-events/``.

The toolkit's blocking detector logs each stall of the event loop as a warning on the
``django_async_toolkit.blocking`` logger, with the event attached to the record
(``record.blocking_event``). ``RecentBlockingEvents`` is a logging handler (see ``LOGGING`` in
the settings) that keeps the last few of them in memory.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any

from django_async_toolkit.blocking import BlockingEvent

KEEP = 50

_lock = threading.Lock()
_recent: collections.deque[BlockingEvent] = collections.deque(maxlen=KEEP)


class RecentBlockingEvents(logging.Handler):
    """A logging handler that remembers the blocking events it sees (the last 50)."""

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "blocking_event", None)
        if isinstance(event, BlockingEvent):
            with _lock:
                _recent.append(event)


def recent_events() -> list[dict[str, Any]]:
    """The events kept, oldest first, as JSON-ready dicts."""
    with _lock:
        events = list(_recent)
    return [
        {
            "duration_ms": round(event.duration * 1000, 1),
            "cpu_ms": None if event.cpu_time is None else round(event.cpu_time * 1000, 1),
            "started_at": event.started_at.isoformat(),
            "where": short_location(event),
            "line": event.frame.line if event.frame is not None else None,
        }
        for event in events
    ]


def short_location(event: BlockingEvent) -> str:
    """``orders/views.py:42 in block``: the blocking frame, relative to the project."""
    frame = event.frame
    if frame is None:
        return "unknown"
    parts = frame.filename.replace("\\", "/").split("/")
    return f"{'/'.join(parts[-2:])}:{frame.lineno} in {frame.name}"
