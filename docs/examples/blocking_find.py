"""Find the line that blocks the event loop: run ``python docs/examples/blocking_find.py``.

A stand-in for an async view that calls a sync function (here ``time.sleep``, in real code a
``requests.get``, a sync ORM query through a helper, a big ``json.loads`` ...).
"""

from __future__ import annotations

import asyncio
import logging
import time

from django_async_toolkit.blocking import BlockingDetector


def render_invoice(order_id: int) -> str:
    time.sleep(0.3)  # a sync call hiding in async code
    return f"invoice {order_id}"


async def handle_request(order_id: int) -> str:
    await asyncio.sleep(0.01)  # fine: yields to the loop
    return render_invoice(order_id)  # blocks all other requests for 300 ms


async def main() -> None:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    async with BlockingDetector(threshold=0.1):
        await handle_request(42)


if __name__ == "__main__":
    asyncio.run(main())
