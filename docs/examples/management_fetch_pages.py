"""``manage.py fetch_pages URL [URL ...]``: fetch pages concurrently with httpx and store them.

Save it as ``<your app>/management/commands/fetch_pages.py``.
"""

from __future__ import annotations

from typing import Any

import httpx
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from pages.models import Page

from django_async_toolkit.management import AsyncLabelCommand


class Command(AsyncLabelCommand):
    help = "Fetch each URL and store the page, a few at a time."
    label = "url"
    max_concurrency = 4  # the default of --max-concurrency
    shutdown_timeout = 15  # seconds to finish after Ctrl-C or SIGTERM

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--timeout", type=float, default=10.0, help="Seconds per request.")

    async def handle(self, *urls: str, **options: Any) -> str:
        self.failed: list[str] = []
        # One client, so one connection pool, for every URL; `async with` closes it however
        # handle() ends: normally, on an error, or cancelled by Ctrl-C.
        async with httpx.AsyncClient(timeout=options["timeout"]) as self.client:
            output = await super().handle(*urls, **options)
        if self.failed:
            self.stdout.write(output)
            raise CommandError(f"{len(self.failed)} of {len(urls)} pages failed.")
        return output

    async def handle_label(self, url: str, **options: Any) -> str | None:
        try:
            response = await self.client.get(url)
            response.raise_for_status()
        except httpx.HTTPError as error:
            self.stderr.write(f"{url}: {error}")
            self.failed.append(url)
            return None
        page, created = await Page.objects.aupdate_or_create(
            url=url,
            defaults={
                "status": response.status_code,
                "body": response.text,
                "fetched_at": timezone.now(),
            },
        )
        return f"{'Stored' if created else 'Updated'} {page.url} ({len(response.content)} bytes)"
