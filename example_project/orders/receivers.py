"""The webhook: every saved order is announced to the upstream's ``/webhooks`` sink.

``@background_receiver`` makes the save not wait for the HTTP call (an ``async def`` receiver on
``post_save``, connected the plain way, would make every ``save()`` wait for it).
With ``task="default"`` the receiver runs on Django Tasks: each save enqueues one task with
django-tasks-db, inside the save's transaction (a rollback leaves none), and a worker process
(``manage.py db_worker``) delivers it, so a webhook survives a crash of the web process.
The order travels as its field values at save time: the worker rebuilds it without a query.
A failed delivery fails its task, recorded with its traceback by django-tasks-db.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save

from django_async_toolkit.signals import background_receiver
from orders.models import Order
from orders.upstream import post_webhook


@background_receiver(post_save, sender=Order, task="default", dispatch_uid="orders.webhook")
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
