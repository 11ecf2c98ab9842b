"""Send a signal of your own from async code, with a timeout and a concurrency bound."""

from __future__ import annotations

from django.dispatch import Signal

from django_async_toolkit.signals import asend_robust

#: Sent when an order is paid; receivers get ``order_id``.
order_paid = Signal()

#: How long one receiver may take, in seconds.
RECEIVER_TIMEOUT = 2.0


async def announce_order_paid(order_id: int) -> list[str]:
    """Tell every receiver, ten at a time; return the names of those that failed or timed out."""
    responses = await asend_robust(
        order_paid,
        sender=None,
        timeout=RECEIVER_TIMEOUT,
        max_concurrency=10,
        order_id=order_id,
    )
    # A failure takes the place of the receiver's response (and is logged).
    return [
        receiver.__qualname__
        for receiver, response in responses
        if isinstance(response, Exception)
    ]
