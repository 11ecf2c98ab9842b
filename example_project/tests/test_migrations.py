"""Migration 0002 seeds the statuses with async ORM calls (``RunPythonAsync``), both ways."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from orders.models import Order, OrderStatus

from django_async_toolkit.migrations import RunPythonAsync

SEEDED = ["new", "paid", "shipped", "delivered", "cancelled"]


def test_the_data_migration_is_a_run_python_async() -> None:
    migration = importlib.import_module("orders.migrations.0002_seed_statuses").Migration
    [operation] = migration.operations
    assert isinstance(operation, RunPythonAsync)
    assert operation.reversible


@pytest.mark.django_db
def test_the_statuses_are_seeded() -> None:
    assert list(OrderStatus.objects.values_list("code", flat=True)) == SEEDED
    assert list(OrderStatus.objects.filter(is_final=True).values_list("code", flat=True)) == [
        "delivered",
        "cancelled",
    ]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_reverses_and_applies_again() -> None:
    call_command("migrate", "orders", "0001", verbosity=0)
    assert not OrderStatus.objects.exists()
    call_command("migrate", "orders", verbosity=0)
    assert list(OrderStatus.objects.values_list("code", flat=True)) == SEEDED


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_reversing_keeps_the_statuses_that_orders_use() -> None:
    Order.objects.create(
        external_id="ord-1",
        customer="Grace Hopper",
        status_id="paid",
        total_cents=100,
        placed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    call_command("migrate", "orders", "0001", verbosity=0)
    assert list(OrderStatus.objects.values_list("code", flat=True)) == ["paid"]
    call_command("migrate", "orders", verbosity=0)
    assert list(OrderStatus.objects.values_list("code", flat=True)) == SEEDED
    call_command("migrate", "orders", "zero", verbosity=0)
    call_command("migrate", "orders", verbosity=0)
    assert list(OrderStatus.objects.values_list("code", flat=True)) == SEEDED
    assert not Order.objects.exists()
