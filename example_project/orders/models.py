"""Orders copied from the upstream API, and the statuses they move through."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import models


class OrderStatus(models.Model):
    """Reference data: the statuses an order can have (seeded by migration 0002)."""

    code = models.SlugField(primary_key=True, max_length=20)
    label = models.CharField(max_length=50)
    position = models.PositiveSmallIntegerField()
    is_final = models.BooleanField(default=False)

    class Meta:
        ordering = ["position"]
        verbose_name_plural = "order statuses"

    def __str__(self) -> str:
        return self.label


class Order(models.Model):
    """One order, as fetched from the upstream order API."""

    external_id = models.CharField(max_length=32, unique=True)
    customer = models.CharField(max_length=100)
    status = models.ForeignKey(OrderStatus, on_delete=models.PROTECT, related_name="orders")
    total_cents = models.PositiveIntegerField()
    lines = models.JSONField(default=list)
    placed_at = models.DateTimeField()
    fetched_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-placed_at"]

    def __str__(self) -> str:
        return self.external_id

    @classmethod
    def from_upstream(cls, data: dict[str, Any]) -> Order:
        """An unsaved order from one entry of the upstream's ``/orders`` results."""
        return cls(
            external_id=data["id"],
            customer=data["customer"],
            status_id=data["status"],
            total_cents=data["total_cents"],
            lines=data["lines"],
            placed_at=datetime.fromisoformat(data["placed_at"]),
        )

    def as_dict(self) -> dict[str, Any]:
        """The order as the API answers it (``status`` must be loaded: use select_related)."""
        return {
            "id": self.external_id,
            "customer": self.customer,
            "status": self.status_id,
            "status_label": self.status.label,
            "total": f"{self.total_cents / 100:.2f}",
            "lines": self.lines,
            "placed_at": self.placed_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
