"""``manage.py sync_orders``: an AsyncBaseCommand, from call_command, acall_command and a shell."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from e2e import ThreadedUvicorn, Upstream
from orders.models import Order
from upstream.app import OrderAPI

from django_async_toolkit.management import acall_command

# serialized_rollback: the statuses that migration 0002 seeded survive each test's flush.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"


def test_call_command(upstream_settings: Upstream) -> None:
    out = io.StringIO()
    call_command("sync_orders", "--pages", "2", "--concurrency", "2", stdout=out)
    assert out.getvalue().startswith("Fetched 40 orders (2 pages, 2 at a time) in ")
    assert out.getvalue().endswith(": 40 new, 40 in the database.\n")
    expected = [order["id"] for order in upstream_settings.api.orders[:40]]
    assert list(Order.objects.values_list("external_id", flat=True)) == expected


async def test_acall_command(upstream_settings: Upstream) -> None:
    out = io.StringIO()
    await acall_command("sync_orders", pages=10, concurrency=3, stdout=out)
    assert "Fetched 120 orders (6 pages, 3 at a time)" in out.getvalue()
    assert await Order.objects.acount() == 120


@pytest.mark.parametrize("argument", ["--pages", "--concurrency"])
def test_arguments_must_be_positive(upstream_settings: Upstream, argument: str) -> None:
    with pytest.raises(CommandError, match=f"argument {argument}: 0 is not at least 1"):
        call_command("sync_orders", argument, "0")


def test_unreachable_upstream_is_a_command_error(settings: object, transactional_db: None) -> None:
    settings.ORDERS_UPSTREAM_URL = "http://127.0.0.1:9"  # type: ignore[attr-defined]
    with pytest.raises(CommandError, match="is the upstream running at ORDERS_UPSTREAM_URL"):
        call_command("sync_orders", "--pages", "1")


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_from_the_command_line(subprocess_env: dict[str, str]) -> None:
    done = run_manage(subprocess_env, "sync_orders", "--pages", "3", "--concurrency", "3")
    assert done.returncode == 0, done.stderr
    assert "Fetched 60 orders (3 pages, 3 at a time)" in done.stdout
    assert Order.objects.count() == 60  # the child wrote to this test's database


def test_from_the_command_line_without_upstream(subprocess_env: dict[str, str]) -> None:
    env = {**subprocess_env, "ORDERS_UPSTREAM_URL": "http://127.0.0.1:9"}
    done = run_manage(env, "sync_orders")
    assert done.returncode == 1
    assert "CommandError:" in done.stderr
    assert "is the upstream running" in done.stderr


def test_ctrl_c_stops_it_cleanly(subprocess_env: dict[str, str]) -> None:
    slow = OrderAPI(orders=40, latency=60)  # the command is surely still waiting at the signal
    with ThreadedUvicorn(slow, lifespan="on", shutdown_timeout=0.5) as server:
        env = {**subprocess_env, "ORDERS_UPSTREAM_URL": server.url}
        process = subprocess.Popen(
            [sys.executable, str(MANAGE), "sync_orders", "--pages", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            slow.wait_for_order_requests(1, timeout=30)  # the command is waiting on page 1
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 130, stderr
    assert "SIGINT" in stderr
    assert stdout == ""
    assert Order.objects.count() == 0
