"""URLconf for ``tests/test_middleware*.py``."""

from __future__ import annotations

from django.urls import path

from tests import middleware_views as views

urlpatterns = [
    path("sync/", views.sync_view),
    path("async/", views.async_view),
    path("fail/", views.failing_view),
    path("template/", views.template_view),
    path("hang/", views.hanging_view),
    path("hang-sync/", views.hanging_sync_view),
    path("stubborn/", views.stubborn_view),
    path("gated/", views.gated_view),
    path("gated-sync/", views.gated_sync_view),
    path("short-deadline/", views.short_deadline_view),
    path("no-deadline/", views.no_deadline_view),
    path("short-deadline-class/", views.ShortDeadlineClassView.as_view()),
    path("short-deadline-dispatch/", views.ShortDeadlineDispatchView.as_view()),
    path("stream/", views.streaming_view),
    path("astream/", views.async_streaming_view),
    path("gated-stream/", views.gated_streaming_view),
    path("file/", views.file_view),
    path("slow-stream/", views.slow_streaming_view),
]
