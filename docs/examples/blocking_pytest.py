"""Fail the tests whose event loop is blocked (the plugin comes with the package)."""

from __future__ import annotations

import asyncio
import time

import pytest


async def test_uses_the_fixture(no_blocking: list[object]) -> None:
    await asyncio.sleep(0.01)  # yields: passes


@pytest.mark.no_blocking(threshold=0.05)
async def test_uses_the_marker() -> None:
    time.sleep(0.2)  # blocks the loop for 200 ms: this test fails, naming this line
