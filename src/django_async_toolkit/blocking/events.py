"""What a stall of the event loop looked like: :class:`BlockingEvent` and the project's frames.

A frame is the project's (a "user frame") unless its file lies in the standard library,
site-packages, Django, asgiref or the toolkit itself.
"""

from __future__ import annotations

import os
import sysconfig
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType

__all__ = ["MAX_STACK_DEPTH", "BlockingEvent", "is_user_file"]

#: The deepest stack a sample keeps (innermost frames first).
MAX_STACK_DEPTH = 100


@dataclass(frozen=True)
class BlockingEvent:
    """One stall of the event loop longer than the detector's threshold."""

    #: How long the loop could not run, in seconds (measured when it ran again).
    duration: float
    #: When the stall started (UTC).
    started_at: datetime
    #: The threshold of the detector that saw it, in seconds.
    threshold: float
    #: The loop thread's stack while it was blocked, outermost call first (as in a traceback).
    #: Empty when the watchdog could not take a sample during the stall (code that held the GIL
    #: for the whole stall).
    stack: tuple[traceback.FrameSummary, ...] = field(repr=False)
    #: CPU time the loop thread used during the stall, in seconds (``None`` if unknown).
    #: Close to ``duration`` for CPU-bound code, close to 0 for ``time.sleep`` or blocking I/O.
    cpu_time: float | None = None

    @property
    def user_frames(self) -> tuple[traceback.FrameSummary, ...]:
        """The project's own frames of :attr:`stack`, innermost first.

        Frames of the standard library, of installed packages (``site-packages``: Django, asgiref,
        uvicorn ...) and of django-async-toolkit itself are left out.
        """
        return tuple(frame for frame in reversed(self.stack) if is_user_file(frame.filename))

    @property
    def frame(self) -> traceback.FrameSummary | None:
        """The frame that blocked: the innermost project frame, else the innermost frame."""
        user = self.user_frames
        if user:
            return user[0]
        return self.stack[-1] if self.stack else None

    @property
    def location(self) -> str:
        """``"path/to/file.py:42 in function"`` of :attr:`frame`, or ``"unknown"``."""
        frame = self.frame
        if frame is None:
            return "unknown"
        return f"{frame.filename}:{frame.lineno} in {frame.name}"

    def format(self, *, project_only: bool = False) -> str:
        """A multi-line description: duration, the blocking line, then the stack.

        With ``project_only``, the stack shows only the project's own frames (:attr:`user_frames`),
        as the pytest plugin does; the log shows the whole stack.
        """
        cpu = "" if self.cpu_time is None else f", {self.cpu_time:.3f} s of CPU"
        lines = [
            f"Event loop blocked for {self.duration:.3f} s{cpu} "
            f"(threshold {self.threshold:.3f} s) at {self.location}"
        ]
        frame = self.frame
        if frame is not None and frame.line:
            lines.append(f"    {frame.line}")
        stack = tuple(reversed(self.user_frames)) if project_only else self.stack
        if stack:
            which = "Project frames of the" if project_only else "Stack of the"
            lines.append(f"{which} event loop thread (most recent call last):")
            lines.extend(
                line.rstrip("\n")
                for line in traceback.StackSummary.from_list(list(stack)).format()
            )
        elif not self.stack:
            lines.append(
                "No stack was sampled: the blocking code held the GIL for the whole stall."
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return (
            f"event loop blocked for {self.duration:.3f} s "
            f"(threshold {self.threshold:.3f} s) at {self.location}"
        )


# --- which frames belong to the project -----------------------------------------------------

_library_dirs: tuple[str, ...] | None = None


def _library_prefixes() -> tuple[str, ...]:
    global _library_dirs
    if _library_dirs is None:
        dirs = set()
        paths = sysconfig.get_paths()
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            if paths.get(key):
                dirs.add(paths[key])
        import asgiref
        import django

        import django_async_toolkit

        toolkit = django_async_toolkit.__file__
        for module_file in (toolkit, django.__file__, asgiref.__file__, os.__file__):
            dirs.add(os.path.dirname(os.path.abspath(module_file)))
        _library_dirs = tuple(
            sorted({os.path.normcase(os.path.abspath(d)).rstrip(os.sep) + os.sep for d in dirs})
        )
    return _library_dirs


def is_user_file(filename: str) -> bool:
    """Whether ``filename`` is project code (not stdlib, site-packages or the toolkit)."""
    if filename.startswith("<"):
        return False
    path = os.path.normcase(os.path.abspath(filename))
    return not path.startswith(_library_prefixes())


def _extract(frame: FrameType) -> tuple[traceback.FrameSummary, ...]:
    summary = traceback.StackSummary.extract(
        traceback.walk_stack(frame), limit=MAX_STACK_DEPTH, lookup_lines=True
    )
    return tuple(reversed(summary))


def _has_user_frame(stack: tuple[traceback.FrameSummary, ...]) -> bool:
    return any(is_user_file(frame.filename) for frame in stack)
