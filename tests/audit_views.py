"""Views of every shape, for the audit's tests."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.template.response import TemplateResponse
from django.views import View

from tests.audit_middleware import record


def sync_view(request: HttpRequest) -> HttpResponse:
    record("view")
    return HttpResponse("sync")


async def async_view(request: HttpRequest) -> HttpResponse:
    record("view")
    return HttpResponse("async")


def template_view(request: HttpRequest) -> TemplateResponse:
    record("view")
    return TemplateResponse(request, engines["django"].from_string("template"))


def failing_sync_view(request: HttpRequest) -> HttpResponse:
    raise ValueError("answered by process_exception")


async def failing_async_view(request: HttpRequest) -> HttpResponse:
    raise ValueError("answered by process_exception")


class SyncPage(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        record("view")
        return HttpResponse("sync class")


class AsyncPage(View):
    async def get(self, request: HttpRequest) -> HttpResponse:
        record("view")
        return HttpResponse("async class")
