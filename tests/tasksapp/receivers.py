"""Task-backed background receivers, connected at start-up (TasksAppConfig.ready).

Aliases (tests/settings.py): ``default`` is the immediate backend, ``dummy`` the dummy one, ``db``
django-tasks-db (only where it is installed).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal

from django_async_toolkit.signals import background_receiver
from tests.tasksapp.models import Delivery, Draft, Note, Parcel

#: Signals of our own, for the send / asend / send_background tests.
pinged = Signal()
queued = Signal()

#: What the receivers saw, in this process (the immediate backend runs them here).
calls: list[dict[str, Any]] = []


@background_receiver(post_save, sender=Note, task="default")
async def note_saved(sender: Any, instance: Note, **kwargs: Any) -> None:
    calls.append({"receiver": "note_saved", "sender": sender, "instance": instance, **kwargs})


@background_receiver(post_delete, sender=Note, task="default")
async def note_deleted(sender: Any, instance: Note, **kwargs: Any) -> None:
    calls.append({"receiver": "note_deleted", "sender": sender, "instance": instance, **kwargs})


@background_receiver([pinged, queued], task="default")
async def ping_received(sender: Any, **kwargs: Any) -> None:
    calls.append({"receiver": "ping_received", "sender": sender, **kwargs})


@background_receiver(queued, task="dummy")
async def queued_to_dummy(sender: Any, **kwargs: Any) -> None:
    calls.append({"receiver": "queued_to_dummy", "sender": sender, **kwargs})


@background_receiver(post_save, sender=Draft, task="dummy")
async def draft_saved(sender: Any, instance: Draft, **kwargs: Any) -> None:
    calls.append({"receiver": "draft_saved", "instance": instance, **kwargs})


def plain_function(command: str) -> None:
    """Not a receiver: a forged task naming it must not call it."""
    raise AssertionError(f"plain_function was called with {command!r}")


if "db" in getattr(settings, "TASKS", {}):

    @background_receiver(post_save, sender=Parcel, task="db")
    async def deliver(sender: Any, instance: Parcel, created: bool, **kwargs: Any) -> None:
        """Record one delivery in the database: the worker tests count them."""
        await Delivery.objects.acreate(note_id=instance.pk, kind="saved", title=instance.title)
