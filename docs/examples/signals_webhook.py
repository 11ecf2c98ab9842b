"""Tell a CRM about every saved user, without making the save wait for the HTTP call.

Put this in an app's ``signals.py`` (imported from its ``AppConfig.ready()``) and set
``CRM_WEBHOOK_URL`` in the settings.
"""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth.models import User
from django.db.models.signals import post_save

from django_async_toolkit.signals import background_receiver


@background_receiver(post_save, sender=User, on_commit=True, dispatch_uid="crm_user_saved")
async def tell_the_crm(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    # Runs after the transaction commits (never if it rolls back); user.save() and
    # await user.asave() have returned by then.
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        response = await client.post(
            settings.CRM_WEBHOOK_URL,
            json={"id": instance.pk, "username": instance.username, "created": created},
        )
        response.raise_for_status()  # a failure is logged on django_async_toolkit.signals
