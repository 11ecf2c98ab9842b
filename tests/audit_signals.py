"""A signal of our own with a sync, an async and a background receiver, for the audit's tests.

Only this module's signal is used, so other tests' saves do not run these receivers.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal, receiver

from django_async_toolkit.signals import background_receiver
from tests.models import Item

audited = Signal()


@receiver(audited)
def sync_receiver(sender: object, **kwargs: Any) -> None:
    pass


@receiver(audited, sender=Item)
async def async_receiver(sender: object, **kwargs: Any) -> None:
    pass


@background_receiver(audited)
async def background(sender: object, **kwargs: Any) -> None:
    pass


class Listener:
    def on_audited(self, sender: object, **kwargs: Any) -> None:
        pass


listener = Listener()
audited.connect(listener.on_audited, sender=object)
