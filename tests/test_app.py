"""The app installs and serves both paths: sync (WSGI test client) and async (ASGI)."""

from __future__ import annotations

import threading

import httpx
import pytest
from django.core.asgi import get_asgi_application
from django.test import AsyncClient, Client

import django_async_toolkit
from tests.servers import serve_asgi


def test_version() -> None:
    assert django_async_toolkit.__version__


def test_sync_view_on_sync_path(client: Client) -> None:
    response = client.get("/sync/")
    assert response.status_code == 200
    assert response.json()["mode"] == "sync"


async def test_async_view_on_async_path(async_client: AsyncClient) -> None:
    response = await async_client.get("/async/")
    assert response.status_code == 200
    data = response.json()
    assert data["mode"] == "async"
    assert data["thread"] == threading.current_thread().name


async def test_sync_view_on_async_path(async_client: AsyncClient) -> None:
    response = await async_client.get("/sync/")
    assert response.status_code == 200
    assert response.json()["thread"] != threading.current_thread().name


@pytest.mark.parametrize("path", ["/sync/", "/async/"])
def test_real_server(path: str) -> None:
    with serve_asgi(get_asgi_application()) as url:
        response = httpx.get(url + path, timeout=10)
    assert response.status_code == 200
