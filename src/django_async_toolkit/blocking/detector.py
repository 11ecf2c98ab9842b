"""Find what blocks the event loop, cheaply enough to leave on in production.

A :class:`BlockingDetector` puts a heartbeat on the event loop (a timer callback that re-arms
itself every few milliseconds) and runs a watchdog thread next to it.
When the heartbeat is late by more than the threshold, the loop is stalled: something running on
the loop thread did not return control to the loop.
While the stall lasts, the watchdog takes the loop thread's stack (``sys._current_frames()``),
which shows the line that blocks.
The stall's full length is known only when the loop runs again; then the watchdog records a
:class:`BlockingEvent`, logs it on the ``django_async_toolkit.blocking`` logger (one warning per
stall) and calls ``on_block``.

A pause of the whole process (the OS not scheduling it, a loaded machine, a debugger, ``SIGSTOP``)
also makes the heartbeat late, but nothing in the process blocked the loop.
The watchdog tells the two apart: during a real stall the watchdog itself keeps running on time
(``time.sleep``, socket calls and pure Python loops all let other threads run), or, when code holds
the GIL so that the watchdog cannot run either, the loop thread used the CPU for the stall.
A late heartbeat with a starved watchdog and an idle loop thread is a pause, not a block.
On Linux, the time the loop thread spent runnable but waiting for a CPU (its schedstat) is
subtracted too: a stall made of such waiting means an overloaded machine, not blocking code.
Both are logged at DEBUG level only.

This module knows nothing of middleware, requests or settings.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django_async_toolkit._validation import is_seconds
from django_async_toolkit.blocking._support import (
    _running_loop,
    _RunQueueClock,
    _StartStopContext,
)
from django_async_toolkit.blocking.events import BlockingEvent, _extract, _has_user_frame

__all__ = ["STILL_BLOCKED_AFTER", "BlockingDetector", "not_blocking_because"]

logger = logging.getLogger("django_async_toolkit.blocking")

#: The default ``still_blocked_after``: seconds after which a stall still going on is logged.
STILL_BLOCKED_AFTER = 10.0


@dataclass(frozen=True)
class _Stall:
    """A late heartbeat, as the loop thread measured it when it ran again."""

    due: float
    end: float
    cpu_time: float
    wall_time: float


@dataclass
class _WatchState:
    """What the watchdog thread remembers from one look at the loop to the next."""

    last_tick: float
    #: The watchdog's longest sleep since the loop was last seen healthy.
    worst_gap: float = 0.0
    #: The stack taken during the current stall, with the due time of the late heartbeat.
    sample: tuple[float, tuple[traceback.FrameSummary, ...]] | None = None
    #: The due time of a heartbeat that was late because the loop was not running.
    idle_due: float | None = None
    run_queue: _RunQueueClock | None = None
    #: The loop thread's run-queue wait when the loop was last seen healthy.
    healthy_wait: float | None = None
    #: The due time of the heartbeat whose stall was reported while it lasted.
    still_blocked_due: float | None = None

    def watchdog_gap(self) -> float:
        """The watchdog's longest sleep around the current stall, counted up to now.

        A pause of the whole process can begin after a tick read the clock and end just before
        that tick reports a stall: the watchdog has then been asleep since its last look.
        """
        return max(self.worst_gap, time.monotonic() - self.last_tick)

    def queue_wait(self, waited: float | None) -> float | None:
        """Seconds the loop thread waited for a CPU since it was last seen healthy, if known."""
        if waited is None or self.healthy_wait is None:
            return None
        return waited - self.healthy_wait

    def stack_of(self, due: float) -> tuple[traceback.FrameSummary, ...]:
        """The stack sampled during the stall of the heartbeat due at ``due`` (empty: none)."""
        sample = self.sample
        return sample[1] if sample is not None and sample[0] == due else ()


class BlockingDetector(_StartStopContext["BlockingDetector"]):
    """Watch an event loop and report each stall longer than ``threshold`` seconds.

    ``start()`` attaches the detector to the running loop (or to ``loop``, from any thread) and
    starts its watchdog thread; ``stop()`` detaches it and joins the thread.
    Both are safe to call twice, and the detector is also a context manager (``with`` and
    ``async with``).

    Each stall is logged once, when it ends, as a warning on the ``django_async_toolkit.blocking``
    logger (the record carries the event as ``record.blocking_event``) unless ``log`` is false,
    and passed to ``on_block``, which is called on the watchdog thread: keep it short, and do not
    touch the event loop from it other than through ``loop.call_soon_threadsafe``.
    An exception raised by ``on_block`` is logged, and the detector carries on.

    ``interval`` is the heartbeat's period (default: a quarter of the threshold, at most 50 ms);
    a stall is reported at most ``interval`` seconds shorter than it was.

    A stall that never ends (a deadlock, a call that waits forever) would never be reported: once
    a stall has lasted ``still_blocked_after`` seconds (default 10, or the threshold if it is
    longer; ``None`` turns this off), the
    watchdog also logs a warning while it lasts, once per stall, with the line the loop is stuck
    on. ``on_block`` is not called for it: it gets the stall when the loop runs again, if ever.
    """

    def __init__(
        self,
        threshold: float = 0.1,
        *,
        on_block: Callable[[BlockingEvent], object] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        interval: float | None = None,
        log: bool = True,
        still_blocked_after: float | None = STILL_BLOCKED_AFTER,
    ) -> None:
        if not is_seconds(threshold):
            raise ValueError(
                f"BlockingDetector threshold is {threshold!r}; it must be a number of seconds "
                "greater than 0."
            )
        if interval is None:
            interval = min(threshold / 4, 0.05)
        elif not is_seconds(interval) or interval > threshold:
            raise ValueError(
                f"BlockingDetector interval is {interval!r}; it must be a number of seconds "
                f"greater than 0 and at most the threshold ({threshold!r})."
            )
        # Left at its default (this very object), the delay follows a threshold above it.
        if still_blocked_after is STILL_BLOCKED_AFTER:
            still_blocked_after = max(STILL_BLOCKED_AFTER, threshold)
        if still_blocked_after is not None and (
            not is_seconds(still_blocked_after) or still_blocked_after < threshold
        ):
            raise ValueError(
                f"BlockingDetector still_blocked_after is {still_blocked_after!r}; it must be a "
                f"number of seconds of at least the threshold ({threshold!r}), or None."
            )
        if on_block is not None and not callable(on_block):
            raise TypeError(
                f"on_block must be a callable taking a BlockingEvent, not {on_block!r}."
            )
        if loop is not None and not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"loop must be an asyncio event loop, not {loop!r}.")
        self.threshold = float(threshold)
        self.interval = float(interval)
        self.on_block = on_block
        self.log = log
        self.still_blocked_after = (
            None if still_blocked_after is None else float(still_blocked_after)
        )
        self._requested_loop = loop
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._stalls: collections.deque[_Stall] = collections.deque()
        # Written on the loop thread only (each a single assignment, read by the watchdog).
        self._handle: asyncio.TimerHandle | asyncio.Handle | None = None
        self._loop_thread_id: int | None = None
        self._loop_native_id: int | None = None
        self._due = 0.0
        self._last_run = 0.0
        self._last_cpu = 0.0
        self._lag_total = 0.0
        self._events_seen = 0

    # -- public API --

    @property
    def running(self) -> bool:
        """Whether the detector is started (and not stopped)."""
        return self._thread is not None

    @property
    def events_seen(self) -> int:
        """How many stalls this detector has reported so far."""
        return self._events_seen

    def start(self) -> BlockingDetector:
        """Attach to the loop and start the watchdog; a second call does nothing."""
        with self._lock:
            if self._thread is not None:
                return self
            loop = self._requested_loop
            if loop is None:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    raise RuntimeError(
                        "BlockingDetector.start() needs the event loop to watch: call it from "
                        "code running on that loop, or pass BlockingDetector(loop=...)."
                    ) from None
            if loop.is_closed():
                raise RuntimeError("BlockingDetector cannot watch a closed event loop.")
            self.loop = loop
            self._stopping.clear()
            self._wake.clear()
            self._stalls.clear()
            self._handle = None
            self._due = time.monotonic() + self.interval
            self._loop_thread_id = None
            thread = threading.Thread(
                target=self._watch,
                args=(loop,),
                name=f"django-async-toolkit blocking detector ({self.threshold:g} s)",
                daemon=True,
            )
            self._thread = thread
            if _running_loop() is loop:
                self._first_beat()
            else:
                loop.call_soon_threadsafe(self._first_beat)
            thread.start()
            return self

    def stop(self) -> None:
        """Detach from the loop and join the watchdog thread; a second call does nothing.

        Called on the loop thread, it first closes a stall that just ended (the blocking code ran
        right before ``stop()``), so that stall is reported before ``stop()`` returns.
        """
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            loop = self.loop
            if loop is not None and _running_loop() is loop:
                self._beat(final=True)
            elif loop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # closed meanwhile
                    loop.call_soon_threadsafe(self._cancel_heartbeat)
            self._stopping.set()
            self._wake.set()
        if thread is not threading.current_thread():  # on_block may call stop()
            thread.join()

    def lag_total(self) -> float:
        """Seconds the heartbeat has been late in total, including the current delay.

        Call it on the loop thread; the difference of two calls is the loop lag seen in between
        (what the ``Server-Timing`` entry of the middleware reports).
        """
        return self._lag_total + max(0.0, time.monotonic() - self._due)

    def _enter(self) -> BlockingDetector:
        return self.start()

    def _exit(self) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<BlockingDetector threshold={self.threshold:g}s {state}>"

    # -- the heartbeat (runs on the loop thread) --

    def _first_beat(self) -> None:
        self._loop_native_id = threading.get_native_id()
        self._loop_thread_id = threading.get_ident()
        self._last_run = time.monotonic()
        self._last_cpu = time.thread_time()
        self._due = self._last_run + self.interval
        if self._thread is not None and not self._stopping.is_set():
            self._schedule()

    def _schedule(self) -> None:
        assert self.loop is not None
        self._handle = self.loop.call_later(self.interval, self._beat)

    def _cancel_heartbeat(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _beat(self, final: bool = False) -> None:
        now = time.monotonic()
        cpu = time.thread_time()
        due = self._due
        lag = now - due
        if lag > 0:
            self._lag_total += lag
        if lag >= self.threshold:
            self._stalls.append(
                _Stall(
                    due=due, end=now, cpu_time=cpu - self._last_cpu, wall_time=now - self._last_run
                )
            )
            self._wake.set()
        self._last_run = now
        self._last_cpu = cpu
        self._due = now + self.interval
        if final or self._stopping.is_set():
            self._cancel_heartbeat()
        else:
            self._schedule()

    # -- the watchdog (its own thread) --

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        state = _WatchState(last_tick=time.monotonic())
        try:
            while True:
                stopping = self._stopping.is_set()
                if loop.is_closed():
                    self._stalls.clear()
                    return
                self._tick(loop, state)
                if stopping:
                    return
                self._wake.wait(self.interval)
                self._wake.clear()
        finally:
            if state.run_queue is not None:
                state.run_queue.close()

    def _tick(self, loop: asyncio.AbstractEventLoop, state: _WatchState) -> None:
        now = time.monotonic()
        state.worst_gap = max(state.worst_gap, now - state.last_tick)
        state.last_tick = now
        if state.run_queue is None and self._loop_native_id is not None:
            state.run_queue = _RunQueueClock(self._loop_native_id)
            state.healthy_wait = state.run_queue.read()
        waited = state.run_queue.read() if state.run_queue is not None else None
        due = self._due
        lag = now - due
        if not loop.is_running():
            state.idle_due = due
        elif lag >= self.threshold:
            self._sample(state, due)
            if (
                self.still_blocked_after is not None
                and lag >= self.still_blocked_after
                and state.still_blocked_due != due
            ):
                self._report_still_blocked(state, due, lag, waited)
        while self._stalls:
            stall = self._stalls.popleft()
            if stall.due == state.idle_due:
                continue  # the loop was not running: nothing blocked it
            self._report(
                stall, state.stack_of(stall.due), state.watchdog_gap(), state.queue_wait(waited)
            )
        if lag < self.threshold:
            state.worst_gap = 0.0
            state.healthy_wait = waited

    def _sample(self, state: _WatchState, due: float) -> None:
        """Take the loop thread's stack, unless this stall already has one with a project frame."""
        sample = state.sample
        if self._loop_thread_id is None or (
            sample is not None and sample[0] == due and _has_user_frame(sample[1])
        ):
            return
        frame = sys._current_frames().get(self._loop_thread_id)
        if frame is not None:
            state.sample = (due, _extract(frame))
        del frame

    def _report_still_blocked(
        self, state: _WatchState, due: float, lag: float, waited: float | None
    ) -> None:
        """Log a stall that is still going on (once per stall); nothing if it is not a block."""
        # The stall's CPU time is known only when the loop runs again: judge by the watchdog,
        # which has kept running on time through a block, but not through a pause.
        excuse = not_blocking_because(
            lag,
            self.threshold,
            watchdog_gap=state.watchdog_gap(),
            cpu_time=0.0,
            wall_time=lag,
            waited=state.queue_wait(waited),
        )
        if excuse is not None:
            return
        state.still_blocked_due = due
        if not self.log:
            return
        event = BlockingEvent(
            duration=lag,
            started_at=datetime.fromtimestamp(time.time() - lag, UTC),
            threshold=self.threshold,
            stack=state.stack_of(due),
        )
        logger.warning(
            "Still blocked, reported before the loop runs again (a deadlock, or a call that "
            "never returns?):\n%s",
            event.format(),
            extra={"blocking_event_so_far": event},
        )

    def _report(
        self,
        stall: _Stall,
        stack: tuple[traceback.FrameSummary, ...],
        watchdog_gap: float,
        waited: float | None,
    ) -> None:
        duration = stall.end - stall.due
        excuse = not_blocking_because(
            duration,
            self.threshold,
            watchdog_gap=watchdog_gap,
            cpu_time=stall.cpu_time,
            wall_time=stall.wall_time,
            waited=waited,
        )
        if excuse is not None:
            logger.debug("Event loop stalled for %.3f s, not reported: %s.", duration, excuse)
            return
        started_at = time.time() - (time.monotonic() - stall.due)
        event = BlockingEvent(
            duration=duration,
            started_at=datetime.fromtimestamp(started_at, UTC),
            threshold=self.threshold,
            stack=stack,
            cpu_time=stall.cpu_time,
        )
        self._events_seen += 1
        if self.log:
            logger.warning("%s", event.format(), extra={"blocking_event": event})
        if self.on_block is not None:
            try:
                self.on_block(event)
            except Exception:
                logger.exception("on_block callback %r failed for %s", self.on_block, event)


def not_blocking_because(
    duration: float,
    threshold: float,
    *,
    watchdog_gap: float,
    cpu_time: float,
    wall_time: float,
    waited: float | None,
) -> str | None:
    """Why a late heartbeat was not the loop's own doing, or ``None`` when it was.

    ``duration``: how late the heartbeat was; ``watchdog_gap``: the watchdog's longest sleep
    around the stall; ``cpu_time`` and ``wall_time``: the loop thread's CPU time and the wall
    time since the previous heartbeat; ``waited``: seconds the loop thread spent runnable but
    waiting for a CPU around the stall (Linux only, else ``None``).
    """
    if waited is not None and duration - waited < threshold:
        return (
            f"the loop thread waited {waited:.3f} s for a CPU (the machine is overloaded, "
            "nothing in the process blocked the loop)"
        )
    # In a pause, the watchdog slept through (nearly) all of it, like the loop.
    if watchdog_gap >= max(threshold, duration * 0.75) and cpu_time < wall_time / 2:
        return (
            "the whole process was paused (the watchdog thread could not run either, and the "
            "loop thread used no CPU)"
        )
    return None
