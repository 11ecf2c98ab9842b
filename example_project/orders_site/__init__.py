"""The example's Django project: settings, URLs and the ASGI entry point."""

from __future__ import annotations
