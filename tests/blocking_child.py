"""A process that runs a blocking detector, driven by the tests through stdin/stdout.

Commands, one a line: ``ping`` (answers ``pong`` once the loop has run its timers), ``block``
(blocks the loop with ``time.sleep``), ``stop`` (stops the detector and prints the events, and
the stalls logged while they lasted, as JSON).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time

from django_async_toolkit.blocking import BlockingDetector, BlockingEvent


def block() -> None:
    time.sleep(0.5)


async def main(threshold: float) -> None:
    loop = asyncio.get_running_loop()
    events: list[BlockingEvent] = []
    still_blocked: list[BlockingEvent] = []
    collect = logging.Handler()
    collect.emit = lambda record: still_blocked.extend(  # type: ignore[method-assign]
        [record.blocking_event_so_far] if hasattr(record, "blocking_event_so_far") else []
    )
    logging.getLogger("django_async_toolkit.blocking").addHandler(collect)
    # Stalls that last 2 thresholds are also logged while they last: a pause must not be.
    detector = BlockingDetector(
        threshold, on_block=events.append, still_blocked_after=2 * threshold
    )
    detector.start()
    print("ready", flush=True)
    while True:
        command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if command == "ping":
            # Timers run in the order they are due: the heartbeat that was due during a pause
            # runs before this sleep ends.
            await asyncio.sleep(threshold)
            print("pong", flush=True)
        elif command == "block":
            block()
            print("blocked", flush=True)
        else:
            detector.stop()
            found = [
                {
                    "duration": e.duration,
                    "function": e.frame.name if e.frame else None,
                    "cpu_time": e.cpu_time,
                }
                for e in events
            ]
            print(
                json.dumps(
                    {
                        "events": found,
                        "still_blocked": [
                            e.frame.name if e.frame else None for e in still_blocked
                        ],
                    }
                ),
                flush=True,
            )
            return


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1])))
