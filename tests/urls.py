from __future__ import annotations

from django.urls import path

from tests import views

urlpatterns = [
    path("sync/", views.sync_view, name="sync"),
    path("async/", views.async_view, name="async"),
]
