from __future__ import annotations

import pytest
from django.conf import settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``postgres_only`` unless the default database is PostgreSQL."""
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    skip = pytest.mark.skip(
        reason="PostgreSQL is not configured: set DATABASE_URL=postgres://... "
        "(e.g. postgres://postgres@127.0.0.1:5432/test) to run this test"
    )
    for item in items:
        if item.get_closest_marker("postgres_only"):
            item.add_marker(skip)
