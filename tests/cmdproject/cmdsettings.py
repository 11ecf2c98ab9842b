"""Settings of the subprocess test project (``tests/test_management_signals.py``).

``CMDPROJECT_DB`` names its SQLite file, ``CMDPROJECT_EVENT_LOOP`` sets ASYNC_TOOLKIT_EVENT_LOOP,
``CMDPROJECT_CLOSE_LOG`` names a file where every closed database connection is written down.
"""

from __future__ import annotations

import os

SECRET_KEY = "django-async-toolkit-cmdproject"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["django_async_toolkit", "cmdapp"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CMDPROJECT_DB", ":memory:"),
    }
}
ASYNC_TOOLKIT_EVENT_LOOP = os.environ.get("CMDPROJECT_EVENT_LOOP", "asyncio")
