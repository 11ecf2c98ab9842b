from __future__ import annotations

from django.urls import path

from tests import blocking_views

urlpatterns = [
    path("sleep/", blocking_views.sleeping_view),
    path("cpu/", blocking_views.cpu_view),
    path("quick/", blocking_views.quick_view),
    path("timed/", blocking_views.timed_view),
    path("sync/", blocking_views.sync_view),
]
