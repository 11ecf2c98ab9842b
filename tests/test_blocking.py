from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.test import AsyncClient

from django_async_toolkit.blocking import (
    BlockingDetector,
    BlockingEvent,
    detect_blocking,
    get_process_detector,
    start_process_detector,
    stop_process_detector,
)
from django_async_toolkit.blocking import detector as blocking
from django_async_toolkit.blocking.detector import _RunQueueClock, not_blocking_because
from django_async_toolkit.blocking.events import is_user_file
from tests import blocking_views
from tests.blocking_views import BLOCK_SECONDS, line_of

THRESHOLD = 0.1
#: A blocked loop is reported at most one heartbeat (threshold / 4) short of its real length;
#: anything above this shows the whole block was seen.
SEEN_WHOLE = BLOCK_SECONDS * 0.6

SLEEP_LINE = line_of(blocking_views.sleeping_view, "blocks here")
BURN_LINE = line_of(blocking_views.burn_cpu, "burns CPU here")


def block_the_loop() -> None:
    time.sleep(BLOCK_SECONDS)  # blocks the loop here


BLOCK_LINE = line_of(block_the_loop, "blocks the loop here")


async def let_the_loop_run() -> None:
    # Timers run in the order they are due: the heartbeat, due during the block, runs before
    # this sleep ends, which closes the stall (``sleep(0)`` would not: its step comes first).
    await asyncio.sleep(0.05)


def same_file(a: str, b: str) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def at(event: BlockingEvent, function: object, line: int) -> bool:
    frame = event.frame
    return (
        frame is not None
        and same_file(frame.filename, function.__code__.co_filename)  # type: ignore[attr-defined]
        and frame.lineno == line
    )


def detector_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("django-async-toolkit blocking")]


@pytest.fixture(autouse=True)
def _no_leaked_detector() -> Iterator[None]:
    yield
    stop_process_detector()
    assert detector_threads() == []


# --- what is reported -----------------------------------------------------------------------


@pytest.mark.urls("tests.blocking_urls")
async def test_sleep_in_async_view_is_reported_with_the_views_file_and_line(
    async_client: AsyncClient,
) -> None:
    async with detect_blocking(threshold=THRESHOLD) as events:
        response = await async_client.get("/sleep/")
    assert response.status_code == 200
    located = [e for e in events if at(e, blocking_views.sleeping_view, SLEEP_LINE)]
    assert len(located) == 1, [e.format() for e in events]
    event = located[0]
    assert event.duration >= SEEN_WHOLE
    assert event.threshold == THRESHOLD
    assert event.frame is not None and event.frame.name == "sleeping_view"
    assert event.frame.line == "time.sleep(BLOCK_SECONDS)  # blocks here"
    assert event.cpu_time is not None and event.cpu_time < event.duration / 2
    assert f"blocking_views.py:{SLEEP_LINE} in sleeping_view" in event.location
    assert f"blocking_views.py:{SLEEP_LINE} in sleeping_view" in str(event)


@pytest.mark.urls("tests.blocking_urls")
async def test_cpu_bound_view_is_reported_innermost_project_frame_first(
    async_client: AsyncClient,
) -> None:
    async with detect_blocking(threshold=THRESHOLD) as events:
        response = await async_client.get("/cpu/")
    assert response.status_code == 200
    located = [e for e in events if at(e, blocking_views.burn_cpu, BURN_LINE)]
    assert len(located) == 1, [e.format() for e in events]
    event = located[0]
    assert event.duration >= SEEN_WHOLE
    assert [f.name for f in event.user_frames[:2]] == ["burn_cpu", "cpu_view"]
    # The full stack goes on out to the loop and Django's handler, outermost first.
    names = [f.name for f in event.stack]
    assert names.index("cpu_view") < names.index("burn_cpu") == len(names) - 1
    assert all(is_user_file(f.filename) for f in event.user_frames)


async def test_steady_stream_of_quick_tasks_is_not_reported() -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2 * BLOCK_SECONDS
    steps = 0

    async def quick_task() -> None:
        nonlocal steps
        while loop.time() < deadline:
            sum(range(200))
            steps += 1
            await asyncio.sleep(0)

    async with detect_blocking(threshold=0.25) as events:
        await asyncio.gather(*(quick_task() for _ in range(50)))
    assert steps > 50
    assert events == []


async def test_with_statement_inside_a_coroutine_closes_the_stall_it_caused() -> None:
    # The block ends right before the with statement exits: the loop has not run since, yet the
    # stall is reported before the block is left.
    with detect_blocking(threshold=THRESHOLD) as events:
        block_the_loop()
    assert [at(e, block_the_loop, BLOCK_LINE) for e in events] == [True]
    assert events[0].duration >= SEEN_WHOLE


async def test_each_stall_is_logged_once_with_its_full_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="django_async_toolkit.blocking")
    async with BlockingDetector(THRESHOLD) as detector:
        block_the_loop()
        await let_the_loop_run()
        block_the_loop()
    records = [r for r in caplog.records if r.name == "django_async_toolkit.blocking"]
    assert len(records) == 2
    assert detector.events_seen == 2
    for record in records:
        event = record.blocking_event  # type: ignore[attr-defined]
        assert isinstance(event, BlockingEvent)
        assert at(event, block_the_loop, BLOCK_LINE)
        message = record.getMessage()
        assert message.startswith(f"Event loop blocked for {event.duration:.3f} s")
        assert f"test_blocking.py:{BLOCK_LINE} in block_the_loop" in message
        assert "time.sleep(BLOCK_SECONDS)  # blocks the loop here" in message
        assert "Stack of the event loop thread (most recent call last):" in message
        assert record.levelno == logging.WARNING


class _SetOnRecord(logging.Handler):
    """Sets ``seen`` when the detector logs a stall that is still going on."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "blocking_event_so_far"):
            self.records.append(record)
            self.seen.set()


def wait_until_reported_as_still_blocked(handler: _SetOnRecord) -> None:
    # The loop is stuck on the next line until the watchdog has logged the stall ...
    handler.seen.wait(30)  # stuck here
    # ... and a while longer, so that the whole stall is much longer than any gap a busy machine
    # leaves in the watchdog's own run: a stall in which the loop used no CPU and the watchdog
    # slept through most of it is (rightly) judged a pause of the process, not reported (seen
    # on CI under two busy loops with a 0.3 s stall).
    time.sleep(1.0)


STILL_LINE = line_of(wait_until_reported_as_still_blocked, "stuck here")


async def test_a_stall_that_lasts_is_logged_while_it_lasts_then_reported_when_it_ends() -> None:
    # The loop stays blocked until the watchdog logs the stall: a deadlock would be seen too.
    handler = _SetOnRecord()
    logger = logging.getLogger("django_async_toolkit.blocking")
    logger.addHandler(handler)
    events: list[BlockingEvent] = []
    try:
        async with BlockingDetector(
            THRESHOLD, on_block=events.append, still_blocked_after=3 * THRESHOLD
        ):
            wait_until_reported_as_still_blocked(handler)
    finally:
        logger.removeHandler(handler)
    assert handler.seen.is_set()
    [record] = handler.records
    so_far = record.blocking_event_so_far  # type: ignore[attr-defined]
    assert isinstance(so_far, BlockingEvent)
    assert at(so_far, wait_until_reported_as_still_blocked, STILL_LINE)
    assert so_far.duration >= 3 * THRESHOLD
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("Still blocked, reported before the loop runs again")
    assert "in wait_until_reported_as_still_blocked" in message
    # When the loop ran again, the whole stall was reported as usual, once.
    [event] = events
    assert at(event, wait_until_reported_as_still_blocked, STILL_LINE)
    assert event.duration >= so_far.duration - THRESHOLD


class _RunningLoop:
    """A stand-in for a loop that is running (and stuck): all the watchdog's tick asks of it."""

    def is_closed(self) -> bool:
        return False

    def is_running(self) -> bool:
        return True


@pytest.mark.parametrize(("watchdog_slept", "logged"), [(False, True), (True, False)])
def test_a_stall_going_on_is_logged_only_if_the_watchdog_ran_through_it(
    watchdog_slept: bool, logged: bool
) -> None:
    # The heartbeat is 1 s late. If the watchdog itself last looked 1 s ago, the whole process
    # was paused (the watchdog cannot see a block it slept through): nothing is logged.
    handler = _SetOnRecord()
    logger = logging.getLogger("django_async_toolkit.blocking")
    logger.addHandler(handler)
    try:
        detector = BlockingDetector(THRESHOLD, still_blocked_after=5 * THRESHOLD)
        now = time.monotonic()
        detector._due = now - 1.0
        last_tick = now - 1.0 if watchdog_slept else now - detector.interval
        state = blocking._WatchState(last_tick=last_tick)
        detector._tick(_RunningLoop(), state)  # type: ignore[arg-type]
        detector._tick(_RunningLoop(), state)  # type: ignore[arg-type]  # once per stall
    finally:
        logger.removeHandler(handler)
    assert len(handler.records) == (1 if logged else 0)


def test_still_blocked_after_default_and_validation() -> None:
    assert BlockingDetector(THRESHOLD).still_blocked_after == 10.0
    assert BlockingDetector(30).still_blocked_after == 30.0  # never below the threshold
    assert BlockingDetector(THRESHOLD, still_blocked_after=None).still_blocked_after is None
    for bad in (0, -1, THRESHOLD / 2, "10"):
        with pytest.raises(ValueError, match="still_blocked_after is"):
            BlockingDetector(THRESHOLD, still_blocked_after=bad)  # type: ignore[arg-type]


async def test_on_block_is_called_on_the_watchdog_thread_when_the_loop_resumes() -> None:
    loop = asyncio.get_running_loop()
    called = asyncio.Event()
    seen: list[tuple[BlockingEvent, str]] = []

    def on_block(event: BlockingEvent) -> None:
        seen.append((event, threading.current_thread().name))
        loop.call_soon_threadsafe(called.set)

    detector = BlockingDetector(THRESHOLD, on_block=on_block, log=False)
    detector.start()
    try:
        before = datetime.now(UTC)
        block_the_loop()
        await asyncio.wait_for(called.wait(), timeout=10)
    finally:
        detector.stop()
    [(event, thread_name)] = seen
    assert thread_name.startswith("django-async-toolkit blocking detector")
    assert at(event, block_the_loop, BLOCK_LINE)
    assert before - timedelta(seconds=1) <= event.started_at <= before + timedelta(seconds=1)


async def test_on_block_errors_are_logged_and_the_detector_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = []

    def on_block(event: BlockingEvent) -> None:
        calls.append(event)
        raise RuntimeError("callback bug")

    async with BlockingDetector(THRESHOLD, on_block=on_block, log=False):
        block_the_loop()
        await let_the_loop_run()
        block_the_loop()
    assert len(calls) == 2
    failures = [r for r in caplog.records if "on_block callback" in r.getMessage()]
    assert len(failures) == 2
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], RuntimeError)


async def test_on_block_may_stop_the_detector() -> None:
    stopped = threading.Event()
    detector: BlockingDetector

    def on_block(event: BlockingEvent) -> None:
        detector.stop()
        stopped.set()

    detector = BlockingDetector(THRESHOLD, on_block=on_block, log=False)
    detector.start()
    [thread] = detector_threads()
    block_the_loop()
    assert await asyncio.to_thread(stopped.wait, 10)
    assert not detector.running
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()
    detector.stop()


async def test_lag_total_includes_the_stall_in_progress() -> None:
    async with BlockingDetector(THRESHOLD, log=False) as detector:
        before = detector.lag_total()
        block_the_loop()
        during = detector.lag_total()
        await asyncio.sleep(0.05)
        after = detector.lag_total()
    assert during - before >= SEEN_WHOLE
    assert after >= during - 0.05


# --- event loops and threads ----------------------------------------------------------------


def test_works_under_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> tuple[list[BlockingEvent], type[asyncio.AbstractEventLoop]]:
        async with detect_blocking(threshold=THRESHOLD) as events:
            await asyncio.sleep(0)
            block_the_loop()
            await let_the_loop_run()
            blocking_views.burn_cpu(BLOCK_SECONDS)
        return events, type(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        events, loop_type = runner.run(main())
    assert loop_type is uvloop.Loop
    # Both blocks are seen, each at its line and for (nearly) its whole length. A loaded machine
    # may add a report of its own (a stall the scheduler made) or split one: not counted here.
    for func, line in [(block_the_loop, BLOCK_LINE), (blocking_views.burn_cpu, BURN_LINE)]:
        seen = [e for e in events if at(e, func, line)]
        assert seen, [e.format() for e in events]
        assert sum(e.duration for e in seen) >= SEEN_WHOLE, [e.format() for e in events]


def test_watches_a_loop_running_in_another_thread() -> None:
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, name="other loop")
    loop_thread.start()
    reported = threading.Event()
    events: list[BlockingEvent] = []

    def on_block(event: BlockingEvent) -> None:
        events.append(event)
        reported.set()

    detector = BlockingDetector(THRESHOLD, loop=loop, on_block=on_block, log=False)
    try:
        assert detector.start() is detector
        assert detector.start() is detector
        loop.call_soon_threadsafe(block_the_loop)
        assert reported.wait(10)
        detector.stop()  # from another thread than the loop's
        detector.stop()
        assert not detector.running
        assert detector_threads() == []
    finally:
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join(10)
        loop.close()
    assert [at(e, block_the_loop, BLOCK_LINE) for e in events] == [True]


def test_a_stopped_loop_is_not_a_blocked_loop() -> None:
    loop = asyncio.new_event_loop()
    idle_seen = threading.Event()
    detector = BlockingDetector(THRESHOLD, loop=loop, log=False)

    async def start() -> None:
        detector.start()

    async def stop() -> None:
        detector.stop()

    try:
        loop.run_until_complete(start())
        # The loop does not run for several thresholds (the watchdog looks every 25 ms).
        idle_seen.wait(4 * THRESHOLD)
        loop.run_until_complete(asyncio.sleep(THRESHOLD))
        loop.run_until_complete(stop())
    finally:
        loop.close()
    assert detector.events_seen == 0


def test_a_closed_loop_ends_the_watchdog() -> None:
    loop = asyncio.new_event_loop()
    detector = BlockingDetector(THRESHOLD, loop=loop, log=False)

    async def start() -> None:
        detector.start()

    loop.run_until_complete(start())
    loop.close()
    [thread] = detector_threads()
    thread.join(10)  # the watchdog notices the closed loop and ends by itself
    assert not thread.is_alive()
    detector.stop()
    assert not detector.running
    with pytest.raises(RuntimeError, match="closed event loop"):
        detector.start()


def test_start_outside_a_loop_needs_the_loop() -> None:
    detector = BlockingDetector()
    with pytest.raises(RuntimeError, match=r"pass BlockingDetector\(loop=\.\.\.\)"):
        detector.start()
    assert not detector.running
    detector.stop()


def test_detect_blocking_outside_a_loop_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="inside async code"), detect_blocking():
        pass  # pragma: no cover - not reached


async def test_start_and_stop_are_idempotent_and_stop_joins_the_thread() -> None:
    detector = BlockingDetector(THRESHOLD)
    assert repr(detector) == "<BlockingDetector threshold=0.1s stopped>"
    detector.start()
    detector.start()
    assert detector.running
    assert detector.loop is asyncio.get_running_loop()
    assert repr(detector) == "<BlockingDetector threshold=0.1s running>"
    [thread] = detector_threads()
    assert thread.daemon
    detector.stop()
    assert not thread.is_alive()
    detector.stop()
    assert detector_threads() == []
    # It can be started again.
    with detector:
        assert len(detector_threads()) == 1
    assert detector_threads() == []


# --- a pause of the whole process -----------------------------------------------------------

CHILD = Path(__file__).with_name("blocking_child.py")


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP/SIGCONT")
def test_a_paused_process_is_not_reported_but_a_block_after_it_is() -> None:
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(THRESHOLD)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGSTOP)
        # The whole process stays stopped for several thresholds.
        threading.Event().wait(6 * THRESHOLD)
        child.send_signal(signal.SIGCONT)
        for command in ("ping", "block", "stop"):
            child.stdin.write(command + "\n")
            child.stdin.flush()
            reply = child.stdout.readline()
        child.stdin.close()
        result = json.loads(reply)
        assert child.wait(30) == 0
    finally:
        if child.poll() is None:  # pragma: no cover - only when the child hangs
            child.kill()
            child.wait()
        child.stdout.close()
    # Only the real block is reported, not the pause.
    assert len(result["events"]) == 1, result
    [event] = result["events"]
    assert event["function"] == "block"
    assert event["duration"] >= SEEN_WHOLE
    # Nor is the pause logged as a stall still going on (the block may be, if the watchdog
    # looked during it).
    assert set(result["still_blocked"]) <= {"block"}, result


class _PausedDuringTheTick:
    """A stand-in loop: the process is paused right after the watchdog's tick read the clock.

    During the pause nothing runs; once it ends, the loop's late heartbeat records its stall
    before the watchdog's tick goes on (the order seen under load on a real process).
    """

    def __init__(self, detector: BlockingDetector, pause: float) -> None:
        self.detector = detector
        self.pause = pause

    def is_closed(self) -> bool:
        return False

    def is_running(self) -> bool:
        due = time.monotonic()
        threading.Event().wait(self.pause)  # the pause itself: the watchdog thread is stopped
        end = time.monotonic()
        self.detector._stalls.append(
            blocking._Stall(due=due, end=end, cpu_time=0.0, wall_time=end - due)
        )
        self.detector._due = end + self.detector.interval
        return True


def test_a_pause_that_begins_during_the_watchdogs_tick_is_not_reported() -> None:
    events: list[BlockingEvent] = []
    detector = BlockingDetector(THRESHOLD, on_block=events.append, log=False)
    detector._due = time.monotonic() + detector.interval
    state = blocking._WatchState(last_tick=time.monotonic())
    detector._tick(_PausedDuringTheTick(detector, 4 * THRESHOLD), state)  # type: ignore[arg-type]
    assert not detector._stalls
    assert events == []


# --- BlockingEvent --------------------------------------------------------------------------


def test_event_without_a_sample() -> None:
    event = BlockingEvent(
        duration=0.25, started_at=datetime.now(UTC), threshold=0.1, stack=(), cpu_time=0.25
    )
    assert event.frame is None
    assert event.user_frames == ()
    assert event.location == "unknown"
    assert str(event) == "event loop blocked for 0.250 s (threshold 0.100 s) at unknown"
    assert event.format().splitlines() == [
        "Event loop blocked for 0.250 s, 0.250 s of CPU (threshold 0.100 s) at unknown",
        "No stack was sampled: the blocking code held the GIL for the whole stall.",
    ]


def test_event_with_library_frames_only_names_the_innermost_frame() -> None:
    stack = (
        traceback.FrameSummary(asyncio.__file__, 10, "run", line="runner.run(main)"),
        traceback.FrameSummary(threading.__file__, 20, "wait", line="waiter.acquire()"),
    )
    event = BlockingEvent(
        duration=0.5, started_at=datetime.now(UTC), threshold=0.1, stack=stack, cpu_time=None
    )
    assert event.user_frames == ()
    assert event.frame is stack[-1]
    assert event.location == f"{threading.__file__}:20 in wait"
    lines = event.format().splitlines()
    assert lines[0] == f"Event loop blocked for 0.500 s (threshold 0.100 s) at {event.location}"
    assert lines[1] == "    waiter.acquire()"


def test_which_files_are_the_projects() -> None:
    assert is_user_file(__file__)
    assert is_user_file(blocking_views.__file__)
    assert not is_user_file(asyncio.__file__)
    assert not is_user_file(pytest.__file__)
    import django

    assert not is_user_file(django.__file__)
    from django_async_toolkit.middleware import blocking

    assert not is_user_file(blocking.__file__)
    assert not is_user_file("<frozen runpy>")


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0, -1, float("inf"), float("nan"), "0.1", True, None])
def test_threshold_must_be_positive_seconds(threshold: object) -> None:
    with pytest.raises(ValueError, match="threshold is .*greater than 0"):
        BlockingDetector(threshold)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold is"):
        detect_blocking(threshold)  # type: ignore[arg-type]


@pytest.mark.parametrize("interval", [0, -0.1, 0.2, "0.01"])
def test_interval_must_be_positive_and_at_most_the_threshold(interval: object) -> None:
    with pytest.raises(ValueError, match=r"interval is .*at most the threshold \(0.1\)"):
        BlockingDetector(0.1, interval=interval)  # type: ignore[arg-type]


def test_interval_default_and_explicit() -> None:
    assert BlockingDetector(0.1).interval == pytest.approx(0.025)
    assert BlockingDetector(1).interval == 0.05
    assert BlockingDetector(1, interval=0.5).interval == 0.5


def test_on_block_and_loop_types_are_checked() -> None:
    with pytest.raises(TypeError, match="on_block must be a callable"):
        BlockingDetector(on_block="print")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="loop must be an asyncio event loop"):
        BlockingDetector(loop=object())  # type: ignore[arg-type]


# --- the process-wide detector ----------------------------------------------------------------


async def test_process_detector_is_started_once_per_loop(settings: object) -> None:
    settings.ASYNC_TOOLKIT_BLOCKING_THRESHOLD = 0.3  # type: ignore[attr-defined]
    assert get_process_detector() is None
    detector = start_process_detector()
    assert start_process_detector() is detector
    assert get_process_detector() is detector
    assert detector.running
    assert detector.threshold == 0.3
    assert detector.loop is asyncio.get_running_loop()
    stop_process_detector()
    stop_process_detector()
    assert get_process_detector() is None
    assert not detector.running


def test_process_detector_of_a_closed_loop_is_replaced() -> None:
    first = asyncio.run(_start_process_detector())
    second = asyncio.run(_start_process_detector())
    assert first is not second
    assert not first.running
    assert get_process_detector() is second


async def _start_process_detector() -> BlockingDetector:
    return start_process_detector()


def test_process_detector_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="start_process_detector"):
        start_process_detector()


# --- telling a blocked loop from a starved process ------------------------------------------


@pytest.mark.parametrize(
    ("gap", "cpu", "waited", "excuse"),
    [
        (0.025, 0.0, 0.0, None),  # time.sleep: the watchdog ran on time
        (0.025, 0.0, None, None),  # the same without schedstat
        (0.5, 0.5, 0.0, None),  # held the GIL, computing: the watchdog starved
        (0.5, 0.3, 0.2, None),  # computing on a loaded machine: 0.3 s is still the code's
        (0.3, 0.0, 0.0, None),  # time.sleep while the watchdog was held up for a while
        (0.5, 0.0, 0.0, "the whole process was paused"),  # SIGSTOP, debugger
        (0.5, 0.0, None, "the whole process was paused"),
        (0.025, 0.0, 0.45, "the loop thread waited 0.450 s for a CPU"),  # overloaded machine
    ],
)
def test_not_blocking_because(
    gap: float, cpu: float, waited: float | None, excuse: str | None
) -> None:
    reason = not_blocking_because(
        0.5, 0.1, watchdog_gap=gap, cpu_time=cpu, wall_time=0.52, waited=waited
    )
    if excuse is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(excuse)


def test_run_queue_clock() -> None:
    clock = _RunQueueClock(threading.get_native_id())
    waited = clock.read()
    if sys.platform == "linux":
        assert waited is not None and waited >= 0
    clock.close()
    assert clock.read() is None
    clock.close()
    assert _RunQueueClock(-1).read() is None  # no such thread


def test_a_stall_is_not_reported_when_the_loop_thread_waited_for_a_cpu(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Stand in for an overloaded machine: the loop thread's run-queue wait grows by as much as
    # the loop is late.
    waits = iter(range(1000))
    monkeypatch.setattr(_RunQueueClock, "read", lambda self: float(next(waits)))
    caplog.set_level(logging.DEBUG, logger="django_async_toolkit.blocking")

    async def main() -> int:
        async with BlockingDetector(THRESHOLD) as detector:
            block_the_loop()
        return detector.events_seen

    assert asyncio.run(main()) == 0
    assert "for a CPU (the machine is overloaded" in caplog.text


def test_run_queue_clock_unreadable(tmp_path: Path) -> None:
    clock = _RunQueueClock(threading.get_native_id())
    clock.close()
    garbage = tmp_path / "schedstat"
    garbage.write_text("garbage\n")
    clock._fd = os.open(garbage, os.O_RDONLY)
    assert clock.read() is None
    clock.close()
