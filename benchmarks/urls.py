from __future__ import annotations

from django.urls import path

from benchmarks import views

urlpatterns = [
    path("", views.trivial),
    path("orm/", views.orm),
]
