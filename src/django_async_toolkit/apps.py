from __future__ import annotations

from django.apps import AppConfig


class DjangoAsyncToolkitConfig(AppConfig):
    """Registers the toolkit's system checks."""

    name = "django_async_toolkit"
    verbose_name = "Django Async Toolkit"

    def ready(self) -> None:
        # Importing the module registers its checks with Django's registry.
        from django_async_toolkit import checks  # noqa: F401
