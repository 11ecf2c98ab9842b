"""A URLconf with function and class-based views, nested and namespaced, for the audit's tests."""

from __future__ import annotations

from django.urls import include, path, re_path

from tests import audit_views

pages = (
    [
        path("sync/", audit_views.SyncPage.as_view(), name="sync"),
        path("async/", audit_views.AsyncPage.as_view(), name="async"),
    ],
    "pages",
)

urlpatterns = [
    path("sync/", audit_views.sync_view, name="sync"),
    path("async/", audit_views.async_view, name="async"),
    path("template/", audit_views.template_view),
    path("fail-sync/", audit_views.failing_sync_view),
    path("fail-async/", audit_views.failing_async_view),
    path("pages/", include(pages)),
    re_path(r"^legacy/(?P<pk>[0-9]+)/$", audit_views.sync_view, name="legacy"),
]
