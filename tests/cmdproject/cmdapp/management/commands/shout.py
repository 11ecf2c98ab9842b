"""An ``AsyncLabelCommand`` for the command-line tests: upper-cases its labels."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from django_async_toolkit.management import AsyncLabelCommand


class Command(AsyncLabelCommand):
    help = "Upper-case each label."

    async def handle_label(self, label: str, **options: Any) -> str:
        if label == "fail":
            raise CommandError("cannot shout 'fail'")
        return label.upper()
