"""A script that sends background dispatches and exits without draining them.

``python tests/signals_exit_script.py COUNT DRAIN_TIMEOUT [stuck] [no-pool]``: sends COUNT
dispatches to a sync receiver (each one sleeps a little, so most are still pending when the script
ends), with ``stuck`` one more to an async receiver that never returns, and with ``no-pool``
``ASYNC_TOOLKIT_SYNC_WORKERS = None`` (a thread per dispatch instead of the worker pool).
At exit (a plain ``atexit`` hook, which runs after the toolkit's drain) it prints how many sync
receivers finished.
Used by tests/test_signals_tasks_inprocess.py.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import time
from typing import Any

import django
from django.conf import settings

count, drain_timeout = int(sys.argv[1]), float(sys.argv[2])
options = {"ASYNC_TOOLKIT_SYNC_WORKERS": None} if "no-pool" in sys.argv[3:] else {}
settings.configure(
    INSTALLED_APPS=["django_async_toolkit"],
    DATABASES={},
    ASYNC_TOOLKIT_DRAIN_TIMEOUT=drain_timeout,
    LOGGING_CONFIG=None,
    **options,
)
django.setup()
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")

from django.dispatch import Signal  # noqa: E402

from django_async_toolkit.signals import send_background  # noqa: E402

work = Signal()
stuck = Signal()
finished = 0
lock = threading.Lock()


def sync_receiver(sender: Any, **kwargs: Any) -> None:
    global finished
    time.sleep(0.001)
    with lock:
        finished += 1


async def stuck_receiver(sender: Any, **kwargs: Any) -> None:
    await asyncio.Event().wait()


work.connect(sync_receiver)
stuck.connect(stuck_receiver)
atexit.register(lambda: print(f"finished {finished} of {count}", flush=True))

if "stuck" in sys.argv[3:]:
    send_background(stuck, sender=None)
for _ in range(count):
    send_background(work, sender=None)
print("sent", flush=True)
