"""The middleware guide's examples run, on both paths."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import AsyncClient, Client
from django.urls import path
from pytest_django.fixtures import Settings as SettingsWrapper

from django_async_toolkit.conf import invalid_settings
from django_async_toolkit.middleware.timeout import _view_timeout
from tests.docs_examples import load_example

custom = load_example("middleware_custom", shared=True)
views = load_example("middleware_views", shared=True)
example_settings = load_example("middleware_settings", shared=True)

urlconf = types.ModuleType("docs_examples_middleware_urls")
urlconf.urlpatterns = [  # type: ignore[attr-defined]
    path("search/", views.search),
    path("poll/", views.long_poll),
    path("report/", views.ReportView.as_view()),
]
sys.modules[urlconf.__name__] = urlconf


@pytest.fixture(autouse=True)
def example_stack(settings: SettingsWrapper) -> Iterator[None]:
    settings.ROOT_URLCONF = urlconf.__name__
    settings.MIDDLEWARE = [
        f"{custom.__name__}.RequestIdMiddleware",
        f"{custom.__name__}.MaintenanceMiddleware",
        *[entry for entry in example_settings.MIDDLEWARE if "django_async_toolkit" in entry],
    ]
    for name in dir(example_settings):
        if name.startswith("ASYNC_TOOLKIT_"):
            setattr(settings, name, getattr(example_settings, name))
    yield
    cache.delete("maintenance")


def test_example_settings_are_valid() -> None:
    assert invalid_settings() == []
    assert example_settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT == 10


def test_custom_middleware_sync_path(client: Client) -> None:
    response = client.get("/search/", headers={"X-Request-ID": "abc"})
    assert response.status_code == 200
    assert response["X-Request-ID"] == "abc"
    assert len(client.get("/poll/")["X-Request-ID"]) == 32
    cache.set("maintenance", True)
    response = client.get("/report/")
    assert response.status_code == 503
    assert response["X-Request-ID"]


async def test_custom_middleware_async_path(async_client: AsyncClient) -> None:
    response = await async_client.get("/search/", headers={"X-Request-ID": "abc"})
    assert response.status_code == 200
    assert response.json() == {"results": []}
    assert response["X-Request-ID"] == "abc"
    assert (await async_client.get("/report/")).content == b"report"
    await cache.aset("maintenance", True)
    response = await async_client.get("/poll/")
    assert response.status_code == 503
    assert response.content == b"Down for maintenance.\n"


def test_view_deadlines() -> None:
    assert _view_timeout(views.search) == 2
    assert _view_timeout(views.long_poll) is None
    assert _view_timeout(views.ReportView.as_view()) == 30
