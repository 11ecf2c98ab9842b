from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Does nothing: the start-up cost of a BaseCommand."
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        return None
