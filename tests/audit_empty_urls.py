"""A URLconf without patterns: the chain alone is the request path."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
