from __future__ import annotations

from django.urls import path

from benchmarks import views
from benchmarks.django_middleware import session_view

urlpatterns = [
    path("", views.trivial),
    path("orm/", views.orm),
    path("session/", session_view),
]
