"""Tell a CRM about every saved user, without making the save wait for the HTTP call.

Put this in an app's ``signals.py`` (imported from its ``AppConfig.ready()``), set
``CRM_WEBHOOK_URL`` in the settings, and serve the project with ``Handler`` (see its docstring),
whose lifespan shutdown closes the client.
"""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth.models import User
from django.db.models.signals import post_save

from django_async_toolkit.asgi import ASGIHandler
from django_async_toolkit.signals import background_receiver

# One client for the process, made once when Django starts, outside the event loop: building a
# client builds an SSL context and loads the CA bundle (the blocking detector caught a client made
# per call stalling the loop for a second), and one client reuses its connections.
crm = httpx.AsyncClient(timeout=httpx.Timeout(5.0))


@background_receiver(post_save, sender=User, on_commit=True, dispatch_uid="crm_user_saved")
async def tell_the_crm(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    # Runs after the transaction commits (never if it rolls back); user.save() and
    # await user.asave() have returned by then.
    response = await crm.post(
        settings.CRM_WEBHOOK_URL,
        json={"id": instance.pk, "username": instance.username, "created": created},
    )
    response.raise_for_status()  # a failure is logged on django_async_toolkit.signals


class Handler(ASGIHandler):
    """The toolkit's ASGI handler, whose lifespan shutdown also closes the client.

    In the project's asgi.py, in place of ``application = get_asgi_application()``::

        django.setup(set_prefix=False)
        from myapp.signals import Handler
        application = Handler()
    """

    async def shutdown(self) -> None:
        try:
            await super().shutdown()  # lets the webhooks still being sent finish first
        finally:
            await crm.aclose()
