"""Management commands whose ``handle`` is ``async def``: :class:`AsyncBaseCommand`,
:class:`AsyncLabelCommand`, :class:`AsyncAppCommand`, and :func:`acall_command`.
"""

from __future__ import annotations

from django_async_toolkit.management.base import (
    AsyncAppCommand,
    AsyncBaseCommand,
    AsyncLabelCommand,
    acall_command,
)

__all__ = ["AsyncAppCommand", "AsyncBaseCommand", "AsyncLabelCommand", "acall_command"]
