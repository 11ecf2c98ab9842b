"""The webhook: every saved order is announced to the upstream's ``/webhooks`` sink.

``@background_receiver`` makes the save not wait for the HTTP call (an ``async def`` receiver on
``post_save``, connected the plain way, would make every ``save()`` wait for it), and
``on_commit=True`` sends nothing for a transaction that rolls back.
A failed delivery is logged by the toolkit with this receiver's name; none is dropped silently, and
the server's shutdown waits for deliveries still in flight.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save

from django_async_toolkit.signals import background_receiver
from orders.models import Order
from orders.upstream import post_webhook


@background_receiver(post_save, sender=Order, on_commit=True, dispatch_uid="orders.webhook")
async def announce_order(
    sender: type[Order], instance: Order, created: bool, **kwargs: Any
) -> None:
    await post_webhook(
        {
            "event": "order.created" if created else "order.updated",
            "order": instance.external_id,
            "status": instance.status_id,
            "updated_at": instance.updated_at.isoformat(),
        }
    )
