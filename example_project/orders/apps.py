from __future__ import annotations

from django.apps import AppConfig


class OrdersConfig(AppConfig):
    """Connects the webhook receiver when Django starts."""

    name = "orders"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing the module connects its receivers.
        from orders import receivers  # noqa: F401
