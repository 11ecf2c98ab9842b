from __future__ import annotations

from typing import Any

from django_async_toolkit.management import AsyncBaseCommand


class Command(AsyncBaseCommand):
    help = "Does nothing: the start-up cost of an AsyncBaseCommand."
    requires_system_checks: list[str] = []

    async def handle(self, *args: Any, **options: Any) -> None:
        return None
