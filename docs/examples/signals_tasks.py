"""Tell a CRM about every saved user from a task worker: it survives a crash of the web process.

Put this in an app's ``signals.py`` (imported from its ``AppConfig.ready()``, so that the worker
imports it too), set ``CRM_WEBHOOK_URL``, and configure a ``TASKS`` backend, e.g. django-tasks-db::

    INSTALLED_APPS = [..., "django_tasks_db"]  # and "django_tasks" on Django 4.2/5.2
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

then run ``python manage.py migrate`` and a worker, ``python manage.py db_worker``.
"""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth.models import User
from django.db.models.signals import post_save

from django_async_toolkit.signals import background_receiver


@background_receiver(post_save, sender=User, task="default", dispatch_uid="crm_user_saved_task")
async def tell_the_crm(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    # Runs in the worker process. ``instance`` is the user as it was when it was saved, rebuilt
    # from its field values (not read again from the database).
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        response = await client.post(
            settings.CRM_WEBHOOK_URL,
            json={"id": instance.pk, "username": instance.username, "created": created},
        )
        # A failure fails the task: the worker records it with its traceback.
        response.raise_for_status()
