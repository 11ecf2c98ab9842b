"""ASGI config for mysite: the whole change is the import of get_asgi_application."""

from __future__ import annotations

import os

from django_async_toolkit.asgi import get_asgi_application  # was: django.core.asgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_asgi_application()
