"""The upstream "order API" that the example's Django project talks to (an ASGI app of its own)."""

from __future__ import annotations
