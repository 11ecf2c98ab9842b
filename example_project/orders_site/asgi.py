"""The ASGI entry point: ``python -m uvicorn orders_site.asgi:application``.

With ``ORDERS_STACK=toolkit`` (the default) it is the toolkit's handler, which pays no thread hop
for Django's per-request housekeeping and speaks the ASGI lifespan protocol: on startup it starts
the blocking detector (``ASYNC_TOOLKIT_BLOCKING_DETECTOR``), on shutdown it drains the webhooks
still being sent and stops the toolkit's threads.
With ``ORDERS_STACK=stock`` it is Django's own handler (the baseline of ``scripts/demo``).
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_site.settings")

if os.environ.get("ORDERS_STACK", "toolkit") == "stock":
    from django.core.asgi import get_asgi_application
else:
    from django_async_toolkit.asgi import get_asgi_application

application = get_asgi_application()
