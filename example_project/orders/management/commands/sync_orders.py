"""``manage.py sync_orders --pages N --concurrency K``: copy the latest upstream orders.

An :class:`~django_async_toolkit.management.AsyncBaseCommand`: ``handle`` is ``async def`` and
fetches up to K pages at once.
Ctrl-C (or SIGTERM) cancels it cleanly: the HTTP client is closed, the process exits with 130
(143), and nothing half-written stays (each batch of orders is one ``abulk_create``).
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError, CommandParser

from django_async_toolkit.management import AsyncBaseCommand
from orders.upstream import UpstreamError, sync_latest


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


class Command(AsyncBaseCommand):
    help = "Fetch the latest orders from the upstream order API, several pages at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--pages", type=positive_int, default=5, help="how many pages to fetch (default 5)"
        )
        parser.add_argument(
            "--concurrency",
            type=positive_int,
            default=4,
            help="how many pages to fetch at once (default 4)",
        )

    async def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = await sync_latest(options["pages"], options["concurrency"])
        except UpstreamError as exc:
            raise CommandError(f"{exc} (is the upstream running at ORDERS_UPSTREAM_URL?)") from exc
        self.stdout.write(
            f"Fetched {result.fetched} orders ({result.pages} pages, "
            f"{options['concurrency']} at a time) in {result.seconds:.2f}s: "
            f"{result.created} new, {result.total} in the database."
        )
